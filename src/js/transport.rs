//! `Transport` for JavaScript: one [`WebRtcTransport`] on its own sbd connection, for
//! benchmarks and experiments below the `Peer`/`Space` API. Thin: each transport gets a fresh
//! agent key and signs one agent info for a fixed benchmark space at its own peer URL; the
//! transport sends that info in its preflight, so two such transports admit each other's
//! messages like any two peers (nothing in admission is bypassed). A message is carried as a
//! K2 NOTIFY frame for that space; the receiver gets its data back. Received messages pass
//! the one admission rule like a space's do: a [`PeerStore`] for the transport's space,
//! fed with the agent infos of the peers' preflights, must
//! [admit](PeerStore::admits) the sender; others are counted ([`JsTransport::unadmitted`]).
//!
//! **Protocol-level use** (e2e tests of misbehaving peers): `options.space` names the space
//! the agent info is signed for (the same name → id rule as `peer.join`), so the transport is
//! admitted by that space's peers; [`JsTransport::send_frame`] sends any encoded `K2Proto`
//! frame as is, [`JsTransport::on_frame`] reports the module messages received, and
//! [`encode_fetch_response_js`], [`encode_publish_ops_js`], [`encode_publish_agent_js`] and
//! `encodeGossip` (`super::testing`) build frames from caller-chosen content — nothing is
//! checked, so a caller can send op data that does not hash to its id, or a tampered agent
//! info. Honest peers must cope with that.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use bytes::Bytes;
use futures::StreamExt;
use js_sys::{Array, Function, Uint8Array};
use serde::Deserialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;

use crate::browser::sbd_signal::SbdSignal;
use crate::browser::webrtc::{NetEvent, WebRtcTransport};
use crate::core::peer_store::{PeerStore, PeerStoreConfig};
use crate::js::peer::space_id_of;
use crate::model::agent::{AgentInfo, AgentInfoSigned, AgentKey};
use crate::model::arc::DhtArc;
use crate::model::id::{OpId, SpaceId};
use crate::model::url::Url;
use crate::net::conn::{NetConfig, Path};
use crate::net::sbd::{SbdClient, SbdConfig};
use crate::wire::{
    FetchMsg, PublishMsg, WireMessage, encode_fetch_response, encode_notify, encode_publish_agent,
    encode_publish_ops,
};

/// The space every `Transport`'s agent info names (32 bytes, "fennec-transport" padded).
const TRANSPORT_SPACE: [u8; 32] = *b"fennec-transport\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TransportOptions {
    #[serde(default)]
    relay_only: bool,
    /// Space name (or 43-char base64url id) the agent info is signed for.
    #[serde(default)]
    space: Option<String>,
    /// Largest message sent or accepted, bytes.
    #[serde(default)]
    max_message_bytes: Option<usize>,
}

/// The space a NOTIFY or module message is for.
fn space_of(msg: &WireMessage) -> Option<&SpaceId> {
    match msg {
        WireMessage::Notify { space, .. }
        | WireMessage::Fetch { space, .. }
        | WireMessage::Publish { space, .. }
        | WireMessage::Gossip { space, .. } => Some(space),
        _ => None,
    }
}

/// What [`JsTransport::on_frame`] reports: the message kind and the op ids it names.
fn frame_kind(msg: &WireMessage) -> Option<(&'static str, Vec<&OpId>)> {
    Some(match msg {
        WireMessage::Fetch { msg, .. } => match msg {
            FetchMsg::Request(ids) => ("fetchRequest", ids.iter().collect()),
            FetchMsg::Response(ops) => ("fetchResponse", ops.iter().map(|(i, _)| i).collect()),
        },
        WireMessage::Publish { msg, .. } => match msg {
            PublishMsg::Ops(ids) | PublishMsg::Introduction(ids) => {
                ("publishOps", ids.iter().collect())
            }
            PublishMsg::Agent(_) => ("publishAgent", Vec::new()),
        },
        WireMessage::Gossip { .. } => ("gossip", Vec::new()),
        _ => return None,
    })
}

/// One WebRTC transport (sbd-signalled, relay fallback) with its own peer URL.
#[wasm_bindgen(js_name = Transport)]
pub struct JsTransport {
    net: RefCell<Option<WebRtcTransport>>,
    url: String,
    space: SpaceId,
    agent_info: String,
    on_message: Rc<RefCell<Option<Function>>>,
    on_frame: Rc<RefCell<Option<Function>>>,
    unadmitted: Rc<Cell<u64>>,
    on_disconnect: Rc<RefCell<Option<Function>>>,
}

fn closed() -> JsError {
    JsError::new("transport closed")
}

#[wasm_bindgen(js_class = Transport)]
impl JsTransport {
    /// Connects to the sbd server `signalUrl` (`ws://host:port`) with a fresh key.
    /// `options.relayOnly` (default false) sends everything through the sbd relay.
    /// `options.space` (default a fixed benchmark space) is the space name, or 43-character
    /// base64url space id, the agent info is signed for, as `peer.join` maps names.
    /// `options.maxMessageBytes` (default 4 MiB) is the largest message sent or accepted.
    ///
    /// # Errors
    /// Bad options, an unreachable signal server, or signing failing.
    pub async fn connect(
        #[wasm_bindgen(js_name = signalUrl)] signal_url: String,
        options: JsValue,
    ) -> Result<JsTransport, JsError> {
        let o: TransportOptions = if options.is_undefined() || options.is_null() {
            TransportOptions::default()
        } else {
            serde_wasm_bindgen::from_value(options)
                .map_err(|e| JsError::new(&format!("Transport options: {e}")))?
        };
        let key = SbdClient::generate_key()
            .map_err(|e| JsError::new(&format!("no random source for the sbd key: {e}")))?;
        let (signal, rx) = SbdSignal::connect(&signal_url, SbdConfig::default(), key)
            .await
            .map_err(|e| JsError::new(&format!("signal server {signal_url}: {e}")))?;
        let default = NetConfig::default();
        let max_message_bytes = o.max_message_bytes.unwrap_or(default.max_message_bytes);
        let config = NetConfig {
            webrtc: !o.relay_only,
            max_message_bytes,
            // A whole message fits one chunk when the limit is below the default chunk size
            // (the same chunks as the default would make).
            chunk_bytes: default.chunk_bytes.min(max_message_bytes),
            ..default
        };
        let (net, mut events) = WebRtcTransport::new(Rc::new(signal), rx, config)
            .map_err(|e| JsError::new(&format!("Transport options: {e}")))?;
        let key = AgentKey::generate().map_err(|e| JsError::new(&format!("agent key: {e}")))?;
        let space = o.space.as_deref().map_or_else(
            || SpaceId::from_bytes(TRANSPORT_SPACE.to_vec()),
            space_id_of,
        );
        let info = AgentInfo::new(
            key.agent_id(),
            space.clone(),
            crate::browser::clock::now(),
            Some(net.local_url().clone()),
            DhtArc::FULL,
        );
        let signed = AgentInfoSigned::sign(&key, info)
            .map_err(|e| JsError::new(&format!("signing the agent info: {e}")))?;
        let agent_info = signed.encode().to_string();
        net.set_local_agents(&[signed]);
        let on_message: Rc<RefCell<Option<Function>>> = Rc::default();
        let on_frame: Rc<RefCell<Option<Function>>> = Rc::default();
        let on_disconnect: Rc<RefCell<Option<Function>>> = Rc::default();
        let (cb, fcb, dcb) = (on_message.clone(), on_frame.clone(), on_disconnect.clone());
        let unadmitted: Rc<Cell<u64>> = Rc::default();
        let (dropped, our_space) = (unadmitted.clone(), space.clone());
        // Ends when the transport is dropped (its event sender goes with it).
        spawn_local(async move {
            let mut peers = PeerStore::new(our_space.clone(), PeerStoreConfig::default());
            while let Some(ev) = events.next().await {
                let now = crate::browser::clock::now();
                let (peer, msg) = match ev {
                    NetEvent::Connected { agents, .. } => {
                        for a in agents {
                            peers.insert(now, a);
                        }
                        continue;
                    }
                    NetEvent::Message { peer, msg, .. } => (peer, msg),
                    // The hostile-peer harness has no membership to tell.
                    NetEvent::Receiving { .. } => continue,
                    NetEvent::Disconnected { peer, reason } => {
                        let f = dcb.borrow().clone();
                        if let Some(f) = f {
                            let _ = f.call2(&JsValue::NULL, &peer.as_str().into(), &reason.into());
                        }
                        continue;
                    }
                };
                if space_of(&msg) != Some(&our_space) || !peers.admits(now, &peer) {
                    dropped.set(dropped.get() + 1);
                    continue;
                }
                if let WireMessage::Notify { data, .. } = &msg {
                    let f = cb.borrow().clone();
                    if let Some(f) = f {
                        let bytes = Uint8Array::from(&data[..]);
                        let _ = f.call2(&JsValue::NULL, &peer.as_str().into(), &bytes);
                    }
                } else if let Some((kind, ids)) = frame_kind(&msg) {
                    let f = fcb.borrow().clone();
                    if let Some(f) = f {
                        let ids: Array = ids.iter().map(|i| JsValue::from(i.to_b64())).collect();
                        let detail = match &msg {
                            WireMessage::Gossip { msg, .. } => super::testing::gossip_detail(msg),
                            _ => JsValue::UNDEFINED,
                        };
                        let args = Array::of4(&peer.as_str().into(), &kind.into(), &ids, &detail);
                        let _ = f.apply(&JsValue::NULL, &args);
                    }
                }
            }
        });
        Ok(JsTransport {
            url: net.local_url().as_str().to_string(),
            net: RefCell::new(Some(net)),
            space,
            agent_info,
            on_message,
            on_frame,
            unadmitted,
            on_disconnect,
        })
    }

    /// Messages received and dropped: for another space, or from a peer the admission rule
    /// does not admit.
    #[wasm_bindgen(getter)]
    pub fn unadmitted(&self) -> f64 {
        self.unadmitted.get() as f64
    }

    /// Our peer URL (`ws://host:port/<sbd pubkey>`).
    #[wasm_bindgen(getter)]
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Our signed agent info, as JSON (`{"agentInfo":"…","signature":"…"}`), the one our
    /// preflight carries.
    #[wasm_bindgen(getter, js_name = agentInfo)]
    pub fn agent_info(&self) -> String {
        self.agent_info.clone()
    }

    fn net(&self) -> Result<WebRtcTransport, JsError> {
        self.net.borrow().clone().ok_or_else(closed)
    }

    fn peer(url: &str) -> Result<Url, JsError> {
        Url::parse(url).map_err(|_| JsError::new(&format!("not a peer URL: {url:?}")))
    }

    /// Connects to `peerUrl` (if not yet) and waits for both preflights; resolves to the
    /// path, `"webrtc"` or `"relay"`.
    ///
    /// # Errors
    /// A bad URL, or the connection failing.
    #[wasm_bindgen(js_name = connectTo)]
    pub async fn connect_to(
        &self,
        #[wasm_bindgen(js_name = peerUrl)] peer_url: String,
    ) -> Result<String, JsError> {
        let net = self.net()?;
        let path = net.connect(&Self::peer(&peer_url)?).await?;
        Ok(match path {
            Path::WebRtc => "webrtc",
            Path::Relay => "relay",
        }
        .into())
    }

    /// Sends `data` to `peerUrl` (connecting on demand) as one message; resolves when it was
    /// handed to the data channel or relay, after any back-pressure wait. At most 4 MiB
    /// minus a few bytes of framing.
    ///
    /// # Errors
    /// A bad URL, a message too large, or the connection failing.
    pub async fn send(
        &self,
        #[wasm_bindgen(js_name = peerUrl)] peer_url: String,
        data: Uint8Array,
    ) -> Result<(), JsError> {
        let net = self.net()?;
        let frame = encode_notify(&self.space, Bytes::from(data.to_vec()));
        net.send(&Self::peer(&peer_url)?, frame).await?;
        Ok(())
    }

    /// Sends `frame`, one encoded `K2Proto` (e.g. from `encodeFetchResponse`), to `peerUrl`
    /// as is (connecting on demand); resolves as [`send`](Self::send). Nothing about the frame
    /// is checked but its size against `options.maxMessageBytes`.
    ///
    /// # Errors
    /// A bad URL, a frame too large, or the connection failing.
    #[wasm_bindgen(js_name = sendFrame)]
    pub async fn send_frame(
        &self,
        #[wasm_bindgen(js_name = peerUrl)] peer_url: String,
        frame: Uint8Array,
    ) -> Result<(), JsError> {
        let net = self.net()?;
        net.send(&Self::peer(&peer_url)?, Bytes::from(frame.to_vec()))
            .await?;
        Ok(())
    }

    /// Calls `cb(peerUrl, data: Uint8Array)` for each message received (replaces any
    /// earlier callback).
    #[wasm_bindgen(js_name = onMessage)]
    pub fn on_message(&self, cb: Function) {
        *self.on_message.borrow_mut() = Some(cb);
    }

    /// Calls `cb(peerUrl, kind, ids: string[], detail)` for each module message received from
    /// an admitted peer (for the transport's space), where `kind` is `"fetchRequest"`,
    /// `"fetchResponse"`, `"publishOps"`, `"publishAgent"` or `"gossip"` and `ids` the
    /// base64url op ids it names (empty for the last two); `detail` is, for gossip only,
    /// `{type, sessionId, discBoundary?}` (e.g. `type: "accept"`; see `encodeGossip`).
    /// Replaces any earlier callback.
    #[wasm_bindgen(js_name = onFrame)]
    pub fn on_frame(&self, cb: Function) {
        *self.on_frame.borrow_mut() = Some(cb);
    }

    /// Calls `cb(peerUrl, reason: string)` each time a connection that was open closes (by
    /// us, by the peer, or failing); `reason` is the closing side's (e.g. "closed by peer:
    /// protocol violation: ..."). Replaces any earlier callback.
    #[wasm_bindgen(js_name = onDisconnect)]
    pub fn on_disconnect(&self, cb: Function) {
        *self.on_disconnect.borrow_mut() = Some(cb);
    }

    /// Closes every connection and the sbd connection; the transport is unusable after.
    pub fn close(&self) {
        if let Some(net) = self.net.borrow_mut().take() {
            net.close_all("transport closed");
        }
        *self.on_message.borrow_mut() = None;
        *self.on_frame.borrow_mut() = None;
        *self.on_disconnect.borrow_mut() = None;
    }
}

fn op_id_arg(s: &str) -> Result<OpId, JsError> {
    OpId::from_b64(s).map_err(|e| JsError::new(&format!("op id: {e}")))
}

/// One op of [`encode_fetch_response_js`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FrameOp {
    id: String,
    #[serde(with = "serde_bytes")]
    data: Vec<u8>,
}

/// A K2 Fetch RESPONSE frame for `space` (a name or base64url id, as `peer.join`) carrying
/// `ops: {id: string (base64url), data: Uint8Array}[]` as given: `data` is not checked
/// against `id`. For [`JsTransport::send_frame`].
///
/// # Errors
/// `ops` not of that shape, or an id not base64url.
#[wasm_bindgen(js_name = encodeFetchResponse)]
pub fn encode_fetch_response_js(space: &str, ops: JsValue) -> Result<Uint8Array, JsError> {
    let ops: Vec<FrameOp> = serde_wasm_bindgen::from_value(ops)
        .map_err(|e| JsError::new(&format!("encodeFetchResponse ops: {e}")))?;
    let ops = ops
        .into_iter()
        .map(|o| Ok((op_id_arg(&o.id)?, Bytes::from(o.data))))
        .collect::<Result<Vec<_>, JsError>>()?;
    let f = encode_fetch_response(&space_id_of(space), &ops);
    Ok(Uint8Array::from(&f[..]))
}

/// A K2 Publish OPS frame for `space` announcing `ids` (base64url op ids). For
/// [`JsTransport::send_frame`].
///
/// # Errors
/// An id not base64url.
#[wasm_bindgen(js_name = encodePublishOps)]
pub fn encode_publish_ops_js(space: &str, ids: Vec<String>) -> Result<Uint8Array, JsError> {
    let ids = ids
        .iter()
        .map(|s| op_id_arg(s))
        .collect::<Result<Vec<_>, _>>()?;
    let f = encode_publish_ops(&space_id_of(space), &ids);
    Ok(Uint8Array::from(&f[..]))
}

/// A K2 Publish AGENT frame for `space` carrying `agentInfoJson` as given (not verified,
/// so it may be unsigned or tampered). For [`JsTransport::send_frame`].
#[wasm_bindgen(js_name = encodePublishAgent)]
pub fn encode_publish_agent_js(
    space: &str,
    #[wasm_bindgen(js_name = agentInfoJson)] agent_info_json: &str,
) -> Uint8Array {
    let f = encode_publish_agent(&space_id_of(space), agent_info_json);
    Uint8Array::from(&f[..])
}
