//! Preflight and admission, sans-IO: what a connection accepts from its peer.
//!
//! **Preflight.** Each side's first message on a connection is a `K2Proto` PREFLIGHT whose
//! data is a JSON array of the sender's signed agent infos, each the outer
//! `{"agentInfo":"…","signature":"…"}` object (the same list shape as a bootstrap `GET`
//! response; [`encode_preflight`]). Kitsune2 leaves the preflight content to the host
//! (default empty; Holochain sends its agent infos), and admits module traffic only from
//! peers it knows an agent info for (`crates/api/src/transport.rs`, reference §3.3); sending
//! our infos up front lets two peers that met through any channel talk at once.
//!
//! **Admission** ([`PeerAdmission::handle`]), per received frame, in order:
//! - frames are decoded with the receive rules of [`crate::wire`] and the configured size
//!   limit; a malformed frame is an error: the connection closes with that reason;
//! - the first frame must be PREFLIGHT, and only the first (else error). Its list must be
//!   JSON, at most [`NetConfig::max_preflight_bytes`] long with at most
//!   [`NetConfig::max_preflight_agents`] entries (else error). Each entry is verified on its
//!   own; entries that fail to verify, are expired or tombstones, or name another URL than
//!   the peer's are left out and counted (a peer may only speak for agents reachable at its
//!   own, signal-authenticated, URL);
//! - NOTIFY and MODULE frames for a space are delivered only if the peer holds a verified,
//!   unexpired, non-tombstone agent info for that space whose URL is the peer's — from its
//!   preflight or given by the app (bootstrap, peer store). Otherwise they are dropped and
//!   counted, as Kitsune2 drops them silently;
//! - DISCONNECT ends the connection with the peer's reason; UNSPECIFIED (or an unknown
//!   type) and MODULE frames for a module fennec does not run are dropped and counted
//!   (Kitsune2 ignores both).

use bytes::Bytes;

use crate::model::agent::{AgentInfoSigned, Ed25519Verifier};
use crate::model::id::SpaceId;
use crate::model::time::Timestamp;
use crate::model::url::Url;
use crate::net::conn::NetConfig;
use crate::wire::{WireError, WireMessage, decode_frame, encode_preflight as k2_preflight};

/// The PREFLIGHT frame carrying `agents` as a JSON array of signed agent infos.
pub fn encode_preflight(agents: &[AgentInfoSigned]) -> Bytes {
    let mut json = String::from("[");
    for (i, a) in agents.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(a.encode());
    }
    json.push(']');
    k2_preflight(json.into_bytes())
}

/// Why a connection must close because of what its peer sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionError {
    /// The frame does not decode (size, protobuf, receive rules).
    #[error("malformed frame: {0}")]
    Malformed(#[from] WireError),
    /// The first frame was not a PREFLIGHT.
    #[error("expected a preflight first, got {0}")]
    ExpectedPreflight(&'static str),
    /// A second PREFLIGHT.
    #[error("repeated preflight")]
    RepeatedPreflight,
    /// The preflight payload is over [`NetConfig::max_preflight_bytes`].
    #[error("preflight of {len} bytes exceeds the {max}-byte limit")]
    PreflightTooLarge {
        /// Bytes received.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The preflight payload is not a JSON array.
    #[error("preflight is not a JSON array of agent infos: {0}")]
    PreflightJson(String),
    /// The preflight lists more than [`NetConfig::max_preflight_agents`] infos.
    #[error("preflight lists {count} agent infos, more than {max}")]
    TooManyAgents {
        /// Entries received.
        count: usize,
        /// The limit.
        max: usize,
    },
}

/// Why a frame was dropped without closing the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropReason {
    /// NOTIFY or MODULE for a space the peer has no valid agent info for.
    NotAdmitted(SpaceId),
    /// An UNSPECIFIED or unknown `K2WireType`.
    Unspecified,
    /// A MODULE frame for a module fennec does not run.
    UnknownModule(String),
}

/// What a received frame means.
// A transient value, returned once per message and moved on at once; boxing would only add
// an allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// The peer's preflight.
    Preflight {
        /// Its agent infos that verified and name the peer's URL.
        accepted: Vec<AgentInfoSigned>,
        /// How many entries were left out.
        rejected: usize,
    },
    /// A message for the app from an admitted peer (NOTIFY or a module message).
    Message(WireMessage),
    /// Dropped and to be counted.
    Dropped(DropReason),
    /// The peer closes the connection with this reason (DISCONNECT).
    Disconnect(String),
}

/// The receive side of one connection (see the [module docs](self)).
#[derive(Debug)]
pub struct PeerAdmission {
    peer: Url,
    max_message_bytes: usize,
    max_preflight_bytes: usize,
    max_preflight_agents: usize,
    got_preflight: bool,
    agents: Vec<AgentInfoSigned>,
}

impl PeerAdmission {
    /// The receive side of a connection to `peer` (its signal-authenticated URL).
    pub fn new(peer: Url, config: &NetConfig) -> Self {
        PeerAdmission {
            peer,
            max_message_bytes: config.max_message_bytes,
            max_preflight_bytes: config.max_preflight_bytes,
            max_preflight_agents: config.max_preflight_agents,
            got_preflight: false,
            agents: Vec::new(),
        }
    }

    /// Whether the peer's preflight has arrived.
    pub fn got_preflight(&self) -> bool {
        self.got_preflight
    }

    /// The agent infos accepted from the peer's preflight.
    pub fn agents(&self) -> &[AgentInfoSigned] {
        &self.agents
    }

    /// Whether the peer may send traffic for `space` at `now`: it holds a valid agent info
    /// for the space at its URL, from its preflight or in `known` (infos the app learnt
    /// elsewhere, already verified).
    pub fn is_admitted(&self, space: &SpaceId, known: &[AgentInfoSigned], now: Timestamp) -> bool {
        self.agents
            .iter()
            .chain(known)
            .any(|a| valid_for(a, &self.peer, now) && &a.space == space)
    }

    /// Handles one complete message from the peer (see the [module docs](self)).
    ///
    /// # Errors
    /// An [`AdmissionError`]: close the connection with it as the reason.
    pub fn handle(
        &mut self,
        frame: Bytes,
        known: &[AgentInfoSigned],
        now: Timestamp,
    ) -> Result<Inbound, AdmissionError> {
        let msg = match decode_frame(frame, self.max_message_bytes) {
            Ok(m) => m,
            Err(WireError::UnknownModule(m)) if self.got_preflight => {
                return Ok(Inbound::Dropped(DropReason::UnknownModule(m)));
            }
            Err(e) => return Err(e.into()),
        };
        if !self.got_preflight {
            let WireMessage::Preflight(data) = msg else {
                return Err(AdmissionError::ExpectedPreflight(kind_name(&msg)));
            };
            self.got_preflight = true;
            let (accepted, rejected) = self.decode_preflight(&data, now)?;
            self.agents = accepted.clone();
            return Ok(Inbound::Preflight { accepted, rejected });
        }
        let space = match &msg {
            WireMessage::Preflight(_) => return Err(AdmissionError::RepeatedPreflight),
            WireMessage::Disconnect(reason) => return Ok(Inbound::Disconnect(reason.clone())),
            WireMessage::Unspecified { .. } => {
                return Ok(Inbound::Dropped(DropReason::Unspecified));
            }
            WireMessage::Notify { space, .. }
            | WireMessage::Fetch { space, .. }
            | WireMessage::Publish { space, .. }
            | WireMessage::Gossip { space, .. } => space,
        };
        if !self.is_admitted(space, known, now) {
            return Ok(Inbound::Dropped(DropReason::NotAdmitted(space.clone())));
        }
        Ok(Inbound::Message(msg))
    }

    fn decode_preflight(
        &self,
        data: &[u8],
        now: Timestamp,
    ) -> Result<(Vec<AgentInfoSigned>, usize), AdmissionError> {
        if data.len() > self.max_preflight_bytes {
            return Err(AdmissionError::PreflightTooLarge {
                len: data.len(),
                max: self.max_preflight_bytes,
            });
        }
        // Count before verifying anything (verification is the expensive part).
        let entries: Vec<serde_json::Value> = serde_json::from_slice(data)
            .map_err(|e| AdmissionError::PreflightJson(e.to_string()))?;
        if entries.len() > self.max_preflight_agents {
            return Err(AdmissionError::TooManyAgents {
                count: entries.len(),
                max: self.max_preflight_agents,
            });
        }
        let mut accepted = Vec::new();
        let mut rejected = 0;
        for e in entries {
            match AgentInfoSigned::decode(&Ed25519Verifier, e.to_string()) {
                Ok(a) if valid_for(&a, &self.peer, now) => accepted.push(a),
                _ => rejected += 1,
            }
        }
        Ok((accepted, rejected))
    }
}

/// A live, unexpired agent info reachable at `peer`.
fn valid_for(a: &AgentInfoSigned, peer: &Url, now: Timestamp) -> bool {
    !a.is_tombstone && !a.is_expired(now) && a.url.as_ref() == Some(peer)
}

fn kind_name(m: &WireMessage) -> &'static str {
    match m {
        WireMessage::Unspecified { .. } => "UNSPECIFIED",
        WireMessage::Preflight(_) => "PREFLIGHT",
        WireMessage::Notify { .. } => "NOTIFY",
        WireMessage::Fetch { .. } | WireMessage::Publish { .. } | WireMessage::Gossip { .. } => {
            "MODULE"
        }
        WireMessage::Disconnect(_) => "DISCONNECT",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::agent::{AgentInfo, AgentKey};
    use crate::model::arc::DhtArc;
    use crate::model::id::OpId;
    use crate::wire::{
        encode_disconnect, encode_fetch_request, encode_module, encode_notify, encode_publish_ops,
        proto::K2Proto,
    };
    use prost::Message;

    const NOW: Timestamp = Timestamp::from_micros(1_700_000_000_000_000);

    fn url(name: &str) -> Url {
        Url::parse(&format!("ws://127.0.0.1:1/{name}")).unwrap()
    }

    fn space(n: u8) -> SpaceId {
        SpaceId::from_bytes(vec![n; 32])
    }

    fn info(
        key: &AgentKey,
        space: SpaceId,
        url: Option<Url>,
        created: Timestamp,
    ) -> AgentInfoSigned {
        AgentInfoSigned::sign(
            key,
            AgentInfo::new(key.agent_id(), space, created, url, DhtArc::FULL),
        )
        .unwrap()
    }

    fn key(n: u8) -> AgentKey {
        AgentKey::from_secret_bytes(&[n; 32])
    }

    fn admitted_peer() -> PeerAdmission {
        let mut p = PeerAdmission::new(url("b"), &NetConfig::default());
        let pf = encode_preflight(&[info(&key(1), space(1), Some(url("b")), NOW)]);
        assert!(matches!(
            p.handle(pf, &[], NOW),
            Ok(Inbound::Preflight { rejected: 0, .. })
        ));
        p
    }

    #[test]
    fn preflight_round_trips_and_filters_entries() {
        let b = url("b");
        let good = info(&key(1), space(1), Some(b.clone()), NOW);
        let good2 = info(&key(2), space(2), Some(b.clone()), NOW);
        let other_url = info(&key(3), space(1), Some(url("c")), NOW);
        let expired = info(
            &key(4),
            space(1),
            Some(b.clone()),
            Timestamp::from_micros(1),
        );
        let tomb = AgentInfoSigned::sign(
            &key(5),
            AgentInfo::tombstone(key(5).agent_id(), space(1), NOW),
        )
        .unwrap();
        let pf = encode_preflight(&[good.clone(), other_url, expired, tomb, good2.clone()]);
        let mut p = PeerAdmission::new(b, &NetConfig::default());
        assert!(!p.got_preflight());
        assert_eq!(
            p.handle(pf, &[], NOW),
            Ok(Inbound::Preflight {
                accepted: vec![good.clone(), good2],
                rejected: 3
            })
        );
        assert!(p.got_preflight());
        assert!(p.is_admitted(&space(1), &[], NOW));
        assert!(p.is_admitted(&space(2), &[], NOW));
        assert!(!p.is_admitted(&space(3), &[], NOW));
        // Admission ends when the info expires.
        assert!(!p.is_admitted(&space(1), &[], good.expires_at));
    }

    #[test]
    fn a_tampered_signature_is_left_out() {
        let good = info(&key(1), space(1), Some(url("b")), NOW);
        let json = good
            .encode()
            .replace("\"signature\":\"", "\"signature\":\"AA");
        let data = format!("[{json}]");
        let mut p = PeerAdmission::new(url("b"), &NetConfig::default());
        assert_eq!(
            p.handle(crate::wire::encode_preflight(data), &[], NOW),
            Ok(Inbound::Preflight {
                accepted: vec![],
                rejected: 1
            })
        );
        assert!(!p.is_admitted(&space(1), &[], NOW));
    }

    #[test]
    fn module_traffic_needs_an_agent_info_for_that_space() {
        let mut p = admitted_peer();
        let fetch = encode_fetch_request(&space(1), &[OpId::from_bytes(vec![1; 32])]);
        assert!(matches!(
            p.handle(fetch, &[], NOW),
            Ok(Inbound::Message(WireMessage::Fetch { .. }))
        ));
        let other = encode_publish_ops(&space(9), &[]);
        assert_eq!(
            p.handle(other.clone(), &[], NOW),
            Ok(Inbound::Dropped(DropReason::NotAdmitted(space(9))))
        );
        let notify = encode_notify(&space(9), Bytes::from_static(b"hi"));
        assert_eq!(
            p.handle(notify.clone(), &[], NOW),
            Ok(Inbound::Dropped(DropReason::NotAdmitted(space(9))))
        );
        // An info learnt elsewhere (bootstrap) admits too, but only for the peer's URL.
        let elsewhere = info(&key(7), space(9), Some(url("b")), NOW);
        let not_theirs = info(&key(8), space(9), Some(url("z")), NOW);
        assert!(matches!(
            p.handle(other.clone(), &[elsewhere], NOW),
            Ok(Inbound::Message(WireMessage::Publish { .. }))
        ));
        assert_eq!(
            p.handle(notify, &[not_theirs], NOW),
            Ok(Inbound::Dropped(DropReason::NotAdmitted(space(9))))
        );
    }

    #[test]
    fn ordering_rules_close_the_connection() {
        let mut p = PeerAdmission::new(url("b"), &NetConfig::default());
        assert_eq!(
            p.handle(encode_notify(&space(1), Bytes::new()), &[], NOW),
            Err(AdmissionError::ExpectedPreflight("NOTIFY"))
        );
        let mut p = admitted_peer();
        assert_eq!(
            p.handle(encode_preflight(&[]), &[], NOW),
            Err(AdmissionError::RepeatedPreflight)
        );
    }

    #[test]
    fn disconnect_unspecified_and_unknown_modules() {
        let mut p = admitted_peer();
        assert_eq!(
            p.handle(encode_disconnect("bye"), &[], NOW),
            Ok(Inbound::Disconnect("bye".into()))
        );
        let unspecified = K2Proto {
            ty: 42,
            ..K2Proto::default()
        }
        .encode_to_vec();
        assert_eq!(
            p.handle(unspecified.into(), &[], NOW),
            Ok(Inbound::Dropped(DropReason::Unspecified))
        );
        assert_eq!(
            p.handle(encode_module(&space(1), "Other", Bytes::new()), &[], NOW),
            Ok(Inbound::Dropped(DropReason::UnknownModule("Other".into())))
        );
    }

    #[test]
    fn hostile_preflights_and_frames_are_errors() {
        let cfg = NetConfig {
            max_preflight_bytes: 2000,
            max_preflight_agents: 1,
            max_message_bytes: 4000,
            ..NetConfig::default()
        };
        let pf = |data: &[u8]| {
            let mut p = PeerAdmission::new(url("b"), &cfg);
            p.handle(crate::wire::encode_preflight(data.to_vec()), &[], NOW)
        };
        assert!(matches!(pf(b"{}"), Err(AdmissionError::PreflightJson(_))));
        assert!(matches!(
            pf(b"not json"),
            Err(AdmissionError::PreflightJson(_))
        ));
        assert!(matches!(pf(b"[1,2"), Err(AdmissionError::PreflightJson(_))));
        assert_eq!(
            pf(b"[1,2]"),
            Err(AdmissionError::TooManyAgents { count: 2, max: 1 })
        );
        assert_eq!(
            pf(&[b' '; 2001]),
            Err(AdmissionError::PreflightTooLarge {
                len: 2001,
                max: 2000
            })
        );
        // Junk entries are left out, not fatal.
        assert_eq!(
            pf(b"[{\"agentInfo\":\"{}\",\"signature\":\"\"}]"),
            Ok(Inbound::Preflight {
                accepted: vec![],
                rejected: 1
            })
        );
        let mut p = PeerAdmission::new(url("b"), &cfg);
        assert!(matches!(
            p.handle(Bytes::from_static(&[0xFF, 0xFF]), &[], NOW),
            Err(AdmissionError::Malformed(_))
        ));
        assert!(matches!(
            p.handle(Bytes::from(vec![0u8; 4001]), &[], NOW),
            Err(AdmissionError::Malformed(WireError::FrameTooLarge { .. }))
        ));
        // Before the preflight, even an unknown module is fatal (it is not a preflight).
        assert!(matches!(
            p.handle(encode_module(&space(1), "Other", Bytes::new()), &[], NOW),
            Err(AdmissionError::Malformed(WireError::UnknownModule(_)))
        ));
    }
}
