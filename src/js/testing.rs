//! Helpers of the `testing` build only (never in `pkg/`), for e2e tests of gossip: the
//! partition switch ([`test_partition`]) and a k2gossip frame encoder ([`encode_gossip_js`])
//! whose content the caller chooses, malformed or not, for a hostile
//! [`Transport`](super::transport::JsTransport) page; and [`gossip_detail`], what
//! `Transport.onFrame` tells of a received gossip message.

use bytes::Bytes;
use js_sys::{Object, Reflect, Uint8Array};
use serde::Deserialize;
use wasm_bindgen::prelude::*;

use crate::js::peer::space_id_of;
use crate::wire::{
    AcceptResponseMessage, ArcSetMessage, GossipMsg, K2GossipDiscSectorDetailsDiffResponseMessage,
    K2GossipDiscSectorsDiffMessage, K2GossipHashesMessage, K2GossipInitiateMessage,
    K2GossipNoDiffMessage, K2GossipTerminateMessage, SnapshotDiscSectorsMessage, encode_gossip,
};

/// Partitions this tab from every peer (`on` true) or heals it (false): while on, its spaces'
/// transport drops every frame sent (reporting success) and every message received
/// ([`crate::testing::partition`]).
#[wasm_bindgen(js_name = testPartition)]
pub fn test_partition(on: bool) {
    crate::testing::partition::set_partitioned(on);
}

/// The description [`encode_gossip_js`] takes (camelCase keys; unknown keys refused).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GossipDesc {
    /// "initiate", "noDiff", "discSectorsDiff", "discSectorDetailsDiffResponse", "hashes"
    /// or "terminate".
    r#type: String,
    #[serde(with = "serde_bytes")]
    session_id: Vec<u8>,
    /// Initiate: the tie breaker (default `u32::MAX`: we win simultaneous initiates).
    #[serde(default)]
    tie_breaker: Option<u32>,
    /// Initiate: "new ops since", µs (default 0).
    #[serde(default)]
    new_since: i64,
    /// Op ids as given (any length): NoDiff's `new_ops`, Hashes' and the details response's
    /// `missing_ids`.
    #[serde(default)]
    ids: Vec<serde_bytes::ByteBuf>,
    /// Also that many made-up distinct ids of `id_bytes` bytes each (default 32).
    #[serde(default)]
    id_count: usize,
    #[serde(default)]
    id_bytes: Option<usize>,
    /// DiscSectorsDiff: the disc boundary (µs), sector indices (any value) and their hashes.
    #[serde(default)]
    disc_boundary: i64,
    #[serde(default)]
    sectors: Vec<u32>,
    #[serde(default)]
    hashes: Vec<serde_bytes::ByteBuf>,
}

impl GossipDesc {
    fn ids(&self) -> Vec<Bytes> {
        let len = self.id_bytes.unwrap_or(32);
        let made = (0..self.id_count).map(|k| {
            let mut id = vec![0xA5u8; len];
            for (b, k) in id.iter_mut().zip((k as u64).to_le_bytes()) {
                *b = k;
            }
            Bytes::from(id)
        });
        self.ids
            .iter()
            .map(|i| Bytes::copy_from_slice(i))
            .chain(made)
            .collect()
    }

    fn response(&self) -> Option<AcceptResponseMessage> {
        Some(AcceptResponseMessage {
            new_ops: self.ids(),
            ..Default::default()
        })
    }
}

/// A "k2gossip" frame for `space` (a name or base64url id, as `peer.join`), built from
/// `desc`: `{type, sessionId: Uint8Array, tieBreaker?, newSince?, ids?: Uint8Array[],
/// idCount?, idBytes?, discBoundary?, sectors?: number[], hashes?: Uint8Array[]}`. Types:
/// `"initiate"` (full arc, plain-Kitsune2 mode, no agents), `"noDiff"` (`ids` as
/// `accept_response.new_ops`), `"discSectorsDiff"` (an empty `accept_response`, the sectors
/// and hashes as given, unchecked), `"discSectorDetailsDiffResponse"` and `"hashes"` (`ids`
/// as `missing_ids`), `"terminate"`. Nothing is checked against the protocol's limits
/// (sector range, id count or length): for hostile-peer tests. For
/// [`JsTransport::send_frame`](super::transport::JsTransport::send_frame).
///
/// # Errors
/// `desc` not of that shape, or an unknown type.
#[wasm_bindgen(js_name = encodeGossip)]
pub fn encode_gossip_js(space: &str, desc: JsValue) -> Result<Uint8Array, JsError> {
    let d: GossipDesc = serde_wasm_bindgen::from_value(desc)
        .map_err(|e| JsError::new(&format!("encodeGossip: {e}")))?;
    let session_id = Bytes::from(d.session_id.clone());
    let msg = match d.r#type.as_str() {
        "initiate" => GossipMsg::Initiate(K2GossipInitiateMessage {
            session_id,
            participating_agents: Vec::new(),
            arc_set: Some(ArcSetMessage {
                value: vec![u32::MAX; 16],
            }),
            tie_breaker: d.tie_breaker.unwrap_or(u32::MAX),
            new_since: d.new_since,
            max_op_data_bytes: 4 << 20,
            dht_op_count: Some(0),
            fennec_reconcile: false,
        }),
        "noDiff" => GossipMsg::NoDiff(K2GossipNoDiffMessage {
            session_id,
            accept_response: d.response(),
            cannot_compare: false,
        }),
        "discSectorsDiff" => GossipMsg::DiscSectorsDiff(K2GossipDiscSectorsDiffMessage {
            session_id,
            accept_response: Some(AcceptResponseMessage::default()),
            snapshot: Some(SnapshotDiscSectorsMessage {
                disc_boundary: d.disc_boundary,
                disc_sectors: d.sectors.clone(),
                disc_sector_hashes: d.hashes.iter().map(|h| Bytes::copy_from_slice(h)).collect(),
            }),
            fennec_reconcile: None,
        }),
        "discSectorDetailsDiffResponse" => {
            GossipMsg::DiscSectorDetailsDiffResponse(K2GossipDiscSectorDetailsDiffResponseMessage {
                session_id,
                missing_ids: d.ids(),
                snapshot: None,
                fennec_reconcile: None,
            })
        }
        "hashes" => GossipMsg::Hashes(K2GossipHashesMessage {
            session_id,
            missing_ids: d.ids(),
        }),
        "terminate" => GossipMsg::Terminate(K2GossipTerminateMessage {
            session_id,
            reason: "test".into(),
        }),
        other => {
            return Err(JsError::new(&format!(
                "encodeGossip: unknown type {other:?}"
            )));
        }
    };
    let f = encode_gossip(&space_id_of(space), &msg);
    Ok(Uint8Array::from(&f[..]))
}

/// What `Transport.onFrame` passes as its fourth argument for a gossip message:
/// `{type, sessionId: Uint8Array, discBoundary?}` (`type` as in [`encode_gossip_js`], plus
/// `"accept"`, `"busy"`, `"discSectorDetailsDiff"`, …; `discBoundary`, µs, from an Accept's
/// snapshot).
pub(super) fn gossip_detail(msg: &GossipMsg) -> JsValue {
    let ty = format!("{:?}", msg.msg_type());
    let mut c = ty.chars();
    let ty: String = c
        .next()
        .map(|f| f.to_ascii_lowercase().to_string() + c.as_str())
        .unwrap_or_default();
    let o = Object::new();
    let _ = Reflect::set(&o, &"type".into(), &ty.into());
    let sid = Uint8Array::from(&msg.session_id()[..]);
    let _ = Reflect::set(&o, &"sessionId".into(), &sid.into());
    if let GossipMsg::Accept(m) = msg
        && let Some(s) = &m.snapshot
    {
        let _ = Reflect::set(&o, &"discBoundary".into(), &(s.disc_boundary as f64).into());
    }
    o.into()
}
