//! The preflight, sans-IO: what each side sends first on a connection, and how the
//! receiver verifies it. (The order rules of the handshake — preflight first, once, module
//! traffic only after it — are states of the connection policy, [`crate::net::conn`].)
//!
//! **Preflight.** Each side's first message on a connection is a `K2Proto` PREFLIGHT whose
//! data is a JSON array of the sender's signed agent infos, each the outer
//! `{"agentInfo":"…","signature":"…"}` object (the same list shape as a bootstrap `GET`
//! response; [`encode_preflight`]). Kitsune2 leaves the preflight content to the host
//! (default empty; Holochain sends its agent infos), reference §3.2; sending our infos up
//! front lets two peers that met through any channel talk at once.
//!
//! **Verification** ([`decode_preflight`]): the list must be JSON, at most
//! [`NetConfig::max_preflight_bytes`] long with at most [`NetConfig::max_preflight_agents`]
//! entries (else an [`AdmissionError`]: the connection closes). Each entry is verified on its
//! own; entries that fail to verify, are expired or tombstones, or name another URL than the
//! peer's ([`crate::model::agent::AgentInfo::is_live_at`]) are left out and counted (a peer may only speak
//! for agents reachable at its own, signal-authenticated, URL). The accepted infos go to the
//! space with the connection's `Connected` event.
//!
//! **Admission of module traffic** is not decided here nor anywhere in the transport: the
//! one rule is [`crate::core::peer_store::PeerStore::admits`], over the space's one store of
//! agent infos (where preflight infos end up, and where blocks are kept).

use bytes::Bytes;

use crate::model::agent::{AgentInfoSigned, Ed25519Verifier, decode_raw_list};
use crate::model::time::Timestamp;
use crate::model::url::Url;
use crate::net::conn::NetConfig;
use crate::wire::{WireError, encode_preflight as k2_preflight};

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

/// Why a connection must close because of what its peer sent during or after the handshake.
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

/// Verifies the data of `peer`'s PREFLIGHT (see the [module docs](self)): returns the infos
/// accepted (verified, live, naming `peer`) and how many entries were left out.
///
/// # Errors
/// [`AdmissionError::PreflightTooLarge`], [`AdmissionError::PreflightJson`],
/// [`AdmissionError::TooManyAgents`]: close the connection.
pub fn decode_preflight(
    data: &[u8],
    peer: &Url,
    now: Timestamp,
    config: &NetConfig,
) -> Result<(Vec<AgentInfoSigned>, usize), AdmissionError> {
    if data.len() > config.max_preflight_bytes {
        return Err(AdmissionError::PreflightTooLarge {
            len: data.len(),
            max: config.max_preflight_bytes,
        });
    }
    // Count before verifying anything (verification is the expensive part).
    let entries = decode_raw_list(data).map_err(AdmissionError::PreflightJson)?;
    if entries.len() > config.max_preflight_agents {
        return Err(AdmissionError::TooManyAgents {
            count: entries.len(),
            max: config.max_preflight_agents,
        });
    }
    let mut accepted = Vec::new();
    let mut rejected = 0;
    for e in entries {
        match AgentInfoSigned::decode(&Ed25519Verifier, e.get()) {
            Ok(a) if a.is_live_at(peer, now) => accepted.push(a),
            _ => rejected += 1,
        }
    }
    Ok((accepted, rejected))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::agent::{AgentInfo, AgentKey};
    use crate::model::arc::DhtArc;
    use crate::model::id::SpaceId;
    use crate::wire::{WireMessage, decode_frame};

    const NOW: Timestamp = Timestamp::from_micros(1_700_000_000_000_000);

    fn url(name: &str) -> Url {
        Url::parse(&format!("ws://127.0.0.1:1/{name}")).unwrap()
    }

    fn space(n: u8) -> SpaceId {
        SpaceId::from_bytes(vec![n; 32])
    }

    fn key(n: u8) -> AgentKey {
        AgentKey::from_secret_bytes(&[n; 32])
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

    fn data_of(frame: Bytes) -> Bytes {
        match decode_frame(frame, usize::MAX).unwrap() {
            WireMessage::Preflight(d) => d,
            other => panic!("not a preflight: {other:?}"),
        }
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
        assert_eq!(
            decode_preflight(&data_of(pf), &b, NOW, &NetConfig::default()),
            Ok((vec![good, good2], 3))
        );
    }

    #[test]
    fn a_tampered_signature_is_left_out() {
        let good = info(&key(1), space(1), Some(url("b")), NOW);
        let json = good
            .encode()
            .replace("\"signature\":\"", "\"signature\":\"AA");
        let data = format!("[{json}]");
        assert_eq!(
            decode_preflight(data.as_bytes(), &url("b"), NOW, &NetConfig::default()),
            Ok((vec![], 1))
        );
    }

    #[test]
    fn hostile_preflights_are_errors() {
        let cfg = NetConfig {
            max_preflight_bytes: 2000,
            max_preflight_agents: 1,
            ..NetConfig::default()
        };
        let pf = |data: &[u8]| decode_preflight(data, &url("b"), NOW, &cfg);
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
            Ok((vec![], 1))
        );
    }
}
