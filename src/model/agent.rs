//! Agent infos: an agent's signed, expiring claim "I am in this space, reach me at this URL,
//! I hold this arc" (Kitsune2 `crates/api/src/agent.rs`, `crates/api/src/doc/agent.rs`).
//!
//! [`AgentInfo`] is the inner JSON object; [`AgentInfoSigned`] is the outer
//! `{"agentInfo":"<inner JSON as a string>","signature":"<b64url>"}`. The signature covers the
//! exact UTF-8 bytes of the inner string, so the original string is kept and re-emitted and
//! field order or whitespace never matter. By convention the agent id is an ed25519 public
//! key and the signature plain ed25519 (RFC 8032): [`AgentKey`] signs, [`Ed25519Verifier`]
//! checks.

use crate::model::arc::DhtArc;
use crate::model::id::{AgentId, SpaceId};
use crate::model::time::{self, Timestamp};
use crate::model::url::Url;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Lifetime of an agent info: `expires_at = created_at + 20 min`, tombstones included
/// (Kitsune2 `crates/core/src/factories/core_space.rs`, `Duration::from_secs(60 * 20)`).
pub const AGENT_INFO_EXPIRY_US: i64 = 20 * 60 * 1_000_000;

/// Re-sign a local agent's info once it expires within 5 min, so a fresh one goes out about
/// every 15 min (Kitsune2 `core_space.rs`, `re_sign_expire_time_ms` default `1000 * 60 * 5`).
pub const RE_SIGN_MARGIN_US: i64 = 5 * 60 * 1_000_000;

/// Largest encoded [`AgentInfoSigned`] (outer JSON, bytes) we sign or accept: the Kitsune2
/// bootstrap server's request body limit (`crates/bootstrap_srv/src/http.rs`,
/// `DefaultBodyLimit::max(1024)`), so anything we hold can also be put to bootstrap.
pub const MAX_AGENT_INFO_BYTES: usize = 1024;

/// Length of an ed25519 public key (= an agent id by convention).
pub const ED25519_PUBLIC_KEY_LEN: usize = 32;

/// Length of an ed25519 signature.
pub const ED25519_SIGNATURE_LEN: usize = 64;

/// Why an agent info could not be decoded, verified, signed or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    /// The outer JSON is malformed or has the wrong shape (for a list: not an array).
    #[error("bad agent info JSON: {0}")]
    Json(String),
    /// The inner `agentInfo` string is not a valid agent info object.
    #[error("bad inner agent info JSON: {0}")]
    InnerJson(String),
    /// The agent id is not a usable public key (wrong length, not a curve point, or not the
    /// signer's own key).
    #[error("bad agent key: {0}")]
    BadKey(String),
    /// The signature is not base64url, has the wrong length, or does not verify.
    #[error("bad agent info signature: {0}")]
    BadSignature(String),
    /// The encoded signed info is larger than [`MAX_AGENT_INFO_BYTES`].
    #[error("agent info is {size} bytes, more than the limit of {max}")]
    TooLarge {
        /// Encoded size in bytes.
        size: usize,
        /// The limit, [`MAX_AGENT_INFO_BYTES`].
        max: usize,
    },
    /// The info's `expires_at` is not after `now`.
    #[error("agent info expired at {expires_at} (now {now})")]
    Expired {
        /// When the info expired.
        expires_at: Timestamp,
        /// The time it was checked at.
        now: Timestamp,
    },
    /// The signer failed.
    #[error("signing failed: {0}")]
    Signing(String),
    /// The platform random source failed while generating a key.
    #[error("random source failed: {0}")]
    Random(String),
}

/// What an agent says about itself. Field order and names are Kitsune2's, so
/// `serde_json::to_string` gives the same bytes Kitsune2 signs.
///
/// JSON (camelCase): `agent`, `space` (b64url), `createdAt`, `expiresAt` (µs as decimal
/// strings), `isTombstone`, `url` (string or `null`; missing ⇒ `None`), `storageArc`
/// (`[s,e]` or `null`; missing ⇒ `Empty`). Unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentInfo {
    /// The agent; by convention its 32-byte ed25519 public key.
    pub agent: AgentId,
    /// The space this info is for.
    pub space: SpaceId,
    /// When the agent signed it (µs); a newer info replaces an older one.
    #[serde(with = "time::serde_string")]
    pub created_at: Timestamp,
    /// When it stops being valid (µs).
    #[serde(with = "time::serde_string")]
    pub expires_at: Timestamp,
    /// The agent left: no URL, empty arc; kept so older live infos cannot come back.
    pub is_tombstone: bool,
    /// Where to reach the agent; `None` (JSON `null`) for tombstones.
    pub url: Option<Url>,
    /// The locations the agent claims to hold.
    #[serde(default)]
    pub storage_arc: DhtArc,
}

impl AgentInfo {
    /// A live info created at `created_at`, expiring [`AGENT_INFO_EXPIRY_US`] later.
    pub fn new(
        agent: AgentId,
        space: SpaceId,
        created_at: Timestamp,
        url: Option<Url>,
        storage_arc: DhtArc,
    ) -> Self {
        AgentInfo {
            agent,
            space,
            created_at,
            expires_at: created_at.add_micros(AGENT_INFO_EXPIRY_US),
            is_tombstone: false,
            url,
            storage_arc,
        }
    }

    /// The info an agent signs when it leaves a space: `is_tombstone`, no URL, empty arc,
    /// the usual expiry (Kitsune2 `core_space.rs`, `local_agent_leave`).
    pub fn tombstone(agent: AgentId, space: SpaceId, created_at: Timestamp) -> Self {
        AgentInfo {
            is_tombstone: true,
            ..AgentInfo::new(agent, space, created_at, None, DhtArc::Empty)
        }
    }

    /// Whether the info is no longer valid at `now` (`expires_at <= now`).
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires_at <= now
    }

    /// Whether this info speaks for a live agent reachable at `url` at `now`: not a
    /// tombstone, not expired, and its `url` is `url`. The per-info half of Kitsune2's
    /// admission rule (`crates/api/src/transport.rs`, reference §3.3); the whole rule, with
    /// blocks, is [`crate::core::peer_store::PeerStore::admits`]. Preflight entries are
    /// filtered with it too.
    pub fn is_live_at(&self, url: &Url, now: Timestamp) -> bool {
        !self.is_tombstone && !self.is_expired(now) && self.url.as_ref() == Some(url)
    }

    /// [`AgentError::Expired`] if [`is_expired`](Self::is_expired).
    ///
    /// # Errors
    /// [`AgentError::Expired`].
    pub fn check_not_expired(&self, now: Timestamp) -> Result<(), AgentError> {
        if self.is_expired(now) {
            return Err(AgentError::Expired {
                expires_at: self.expires_at,
                now,
            });
        }
        Ok(())
    }

    /// Whether a local agent should sign a fresh info: this one expires within
    /// [`RE_SIGN_MARGIN_US`] of `now` (Kitsune2 `core_space.rs`: `expires_at <= cutoff`).
    pub fn needs_re_sign(&self, now: Timestamp) -> bool {
        self.expires_at <= now.add_micros(RE_SIGN_MARGIN_US)
    }

    /// The inner JSON string, as it is signed.
    ///
    /// # Errors
    /// [`AgentError::Json`] (not expected: every field serialises).
    pub fn encode(&self) -> Result<String, AgentError> {
        serde_json::to_string(self).map_err(|e| AgentError::Json(e.to_string()))
    }
}

/// Produces detached signatures over an encoded agent info (Kitsune2 `Signer`, synchronous
/// here; an asynchronous signer can sign [`AgentInfo::encode`] itself and call
/// [`AgentInfoSigned::from_parts`]).
pub trait Signer {
    /// Signs `message`, the encoded form of `info`.
    ///
    /// # Errors
    /// [`AgentError::Signing`] or [`AgentError::BadKey`] if this signer cannot sign for
    /// `info.agent`.
    fn sign(&self, info: &AgentInfo, message: &[u8]) -> Result<Bytes, AgentError>;
}

/// Checks a detached signature over an encoded agent info (Kitsune2 `Verifier`, which
/// returns a bool; ours says why).
pub trait Verifier {
    /// `Ok` if `signature` is `info.agent`'s signature over `message`.
    ///
    /// # Errors
    /// [`AgentError::BadKey`] or [`AgentError::BadSignature`].
    fn verify(&self, info: &AgentInfo, message: &[u8], signature: &[u8]) -> Result<(), AgentError>;
}

/// ed25519 (RFC 8032) verification, with the agent id as the public key (Kitsune2
/// `crates/core/src/lib.rs`, `Ed25519Verifier`). Uses `verify_strict`, which also rejects
/// weak keys and malleated signatures that honest signers never produce.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ed25519Verifier;

impl Verifier for Ed25519Verifier {
    fn verify(&self, info: &AgentInfo, message: &[u8], signature: &[u8]) -> Result<(), AgentError> {
        let key = verifying_key(&info.agent)?;
        let sig: &[u8; ED25519_SIGNATURE_LEN] = signature.try_into().map_err(|_| {
            AgentError::BadSignature(format!(
                "{} bytes, expected {ED25519_SIGNATURE_LEN}",
                signature.len()
            ))
        })?;
        key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(sig))
            .map_err(|_| AgentError::BadSignature("does not verify".into()))
    }
}

fn verifying_key(agent: &AgentId) -> Result<ed25519_dalek::VerifyingKey, AgentError> {
    let bytes = agent.as_bytes();
    let key: &[u8; ED25519_PUBLIC_KEY_LEN] = bytes.try_into().map_err(|_| {
        AgentError::BadKey(format!(
            "agent id is {} bytes, expected {ED25519_PUBLIC_KEY_LEN}",
            bytes.len()
        ))
    })?;
    ed25519_dalek::VerifyingKey::from_bytes(key)
        .map_err(|_| AgentError::BadKey("agent id is not an ed25519 public key".into()))
}

/// An agent's ed25519 key pair. Its [`AgentId`] is the 32-byte public key. The secret is
/// zeroed on drop (ed25519-dalek `zeroize`); `Debug` shows only the agent id.
#[derive(Clone)]
pub struct AgentKey {
    key: ed25519_dalek::SigningKey,
    id: AgentId,
}

impl AgentKey {
    /// A new key from 32 bytes of the platform's secure random source (`crypto.getRandomValues`
    /// in the browser).
    ///
    /// # Errors
    /// [`AgentError::Random`] if the random source fails.
    pub fn generate() -> Result<Self, AgentError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| AgentError::Random(e.to_string()))?;
        let key = Self::from_secret_bytes(&secret);
        secret.fill(0);
        Ok(key)
    }

    /// The key with this 32-byte RFC 8032 secret (seed), e.g. loaded from storage.
    pub fn from_secret_bytes(secret: &[u8; 32]) -> Self {
        let key = ed25519_dalek::SigningKey::from_bytes(secret);
        let id = AgentId::from_bytes(key.verifying_key().to_bytes().to_vec());
        AgentKey { key, id }
    }

    /// The 32-byte secret (seed), for storage. Handle with care.
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The agent id: the 32-byte public key.
    pub fn agent_id(&self) -> AgentId {
        self.id.clone()
    }

    /// The 64-byte ed25519 signature of `message`.
    pub fn sign_bytes(&self, message: &[u8]) -> [u8; ED25519_SIGNATURE_LEN] {
        use ed25519_dalek::Signer as _;
        self.key.sign(message).to_bytes()
    }
}

impl Signer for AgentKey {
    /// Refuses ([`AgentError::BadKey`]) to sign an info for another agent: the signature
    /// could never verify.
    fn sign(&self, info: &AgentInfo, message: &[u8]) -> Result<Bytes, AgentError> {
        if info.agent != self.id {
            return Err(AgentError::BadKey(format!(
                "info is for agent {}, this key is {}",
                info.agent, self.id
            )));
        }
        Ok(Bytes::copy_from_slice(&self.sign_bytes(message)))
    }
}

impl std::fmt::Debug for AgentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AgentKey({})", self.id)
    }
}

/// A verified agent info with the exact inner string it was signed over.
///
/// Encoded (outer JSON): `{"agentInfo":"<inner JSON string>","signature":"<b64url>"}`.
/// Unknown outer fields are ignored on decode and dropped on encode; unknown inner fields
/// survive, because the inner string is kept verbatim.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AgentInfoSigned {
    info: AgentInfo,
    inner: String,
    signature: Bytes,
    /// The outer JSON, built once: it is what we send and what the size limit applies to.
    outer: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Outer {
    agent_info: String,
    signature: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OuterRef<'a> {
    agent_info: &'a str,
    signature: &'a str,
}

impl AgentInfoSigned {
    /// Encodes `info` and signs it.
    ///
    /// # Errors
    /// The signer's error, or [`AgentError::TooLarge`] if the result exceeds
    /// [`MAX_AGENT_INFO_BYTES`] (e.g. a very long URL).
    pub fn sign(signer: &impl Signer, info: AgentInfo) -> Result<Self, AgentError> {
        let inner = info.encode()?;
        let signature = signer.sign(&info, inner.as_bytes())?;
        Self::assemble(info, inner, signature)
    }

    /// Builds a signed info from an inner JSON string and its signature made elsewhere,
    /// parsing and verifying them like [`decode`](Self::decode).
    ///
    /// # Errors
    /// [`AgentError::TooLarge`], [`AgentError::InnerJson`], then the verifier's error.
    pub fn from_parts(
        verifier: &impl Verifier,
        inner: String,
        signature: Bytes,
    ) -> Result<Self, AgentError> {
        // Size first (cheap), signature last (the expensive part).
        let outer = encode_outer(&inner, &signature)?;
        // from_slice, not from_str: one JSON reader type in the module instead of two (size).
        let info: AgentInfo = serde_json::from_slice(inner.as_bytes())
            .map_err(|e| AgentError::InnerJson(e.to_string()))?;
        verifier.verify(&info, inner.as_bytes(), &signature)?;
        Ok(AgentInfoSigned {
            info,
            inner,
            signature,
            outer,
        })
    }

    /// Decodes and verifies one signed info (outer JSON, as bytes or `&str`).
    ///
    /// The size limit applies to the canonical encoding (whitespace and unknown outer fields
    /// do not count); callers bound the raw input (HTTP body, wire frame).
    ///
    /// # Errors
    /// [`AgentError::Json`] for a malformed outer object, [`AgentError::BadSignature`] for a
    /// signature that is not base64url, then as [`from_parts`](Self::from_parts).
    pub fn decode(verifier: &impl Verifier, json: impl AsRef<[u8]>) -> Result<Self, AgentError> {
        Self::decode_bytes(verifier, json.as_ref())
    }

    fn decode_bytes(verifier: &impl Verifier, json: &[u8]) -> Result<Self, AgentError> {
        let outer: Outer =
            serde_json::from_slice(json).map_err(|e| AgentError::Json(e.to_string()))?;
        Self::from_outer(verifier, outer)
    }

    /// Decodes a JSON array of signed infos, such as a bootstrap `GET` response. Each entry
    /// is decoded and verified on its own: bad entries come back as errors in place.
    ///
    /// # Errors
    /// [`AgentError::Json`] if the input is not a JSON array.
    pub fn decode_list(
        verifier: &impl Verifier,
        json: impl AsRef<[u8]>,
    ) -> Result<Vec<Result<Self, AgentError>>, AgentError> {
        // Entries stay raw text until each is decoded on its own: no `serde_json::Value`
        // (its parser, map and drop code are ~17 KB of the wasm module).
        let entries = decode_raw_list(json.as_ref()).map_err(AgentError::Json)?;
        Ok(entries
            .into_iter()
            .map(|raw| Self::decode_bytes(verifier, raw.get().as_bytes()))
            .collect())
    }

    fn from_outer(verifier: &impl Verifier, outer: Outer) -> Result<Self, AgentError> {
        let signature = URL_SAFE_NO_PAD
            .decode(&outer.signature)
            .map_err(|e| AgentError::BadSignature(format!("not base64url: {e}")))?;
        Self::from_parts(verifier, outer.agent_info, Bytes::from(signature))
    }

    fn assemble(info: AgentInfo, inner: String, signature: Bytes) -> Result<Self, AgentError> {
        let outer = encode_outer(&inner, &signature)?;
        Ok(AgentInfoSigned {
            info,
            inner,
            signature,
            outer,
        })
    }

    /// The outer JSON, byte-exact with Kitsune2's `AgentInfoSigned::encode`; at most
    /// [`MAX_AGENT_INFO_BYTES`] long.
    pub fn encode(&self) -> &str {
        &self.outer
    }

    /// The decoded inner info (also reachable through `Deref`).
    pub fn info(&self) -> &AgentInfo {
        &self.info
    }

    /// The inner JSON string exactly as signed.
    pub fn inner_json(&self) -> &str {
        &self.inner
    }

    /// The raw signature bytes (64 for ed25519).
    pub fn signature(&self) -> &Bytes {
        &self.signature
    }
}

/// Splits a JSON array into its elements' raw text, unparsed (they are checked on their own).
///
/// # Errors
/// serde_json's message if `json` is not a JSON array.
pub(crate) fn decode_raw_list(json: &[u8]) -> Result<Vec<&serde_json::value::RawValue>, String> {
    serde_json::from_slice(json).map_err(|e| e.to_string())
}

fn encode_outer(inner: &str, signature: &[u8]) -> Result<String, AgentError> {
    let outer = serde_json::to_string(&OuterRef {
        agent_info: inner,
        signature: &URL_SAFE_NO_PAD.encode(signature),
    })
    .map_err(|e| AgentError::Json(e.to_string()))?;
    if outer.len() > MAX_AGENT_INFO_BYTES {
        return Err(AgentError::TooLarge {
            size: outer.len(),
            max: MAX_AGENT_INFO_BYTES,
        });
    }
    Ok(outer)
}

impl std::ops::Deref for AgentInfoSigned {
    type Target = AgentInfo;
    fn deref(&self) -> &AgentInfo {
        &self.info
    }
}

impl std::fmt::Debug for AgentInfoSigned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AgentInfoSigned({})", self.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIG: &[u8] = b"fake-signature";

    /// Kitsune2's `TestCrypto`: a constant fake signature.
    struct TestCrypto;

    impl Signer for TestCrypto {
        fn sign(&self, _: &AgentInfo, _: &[u8]) -> Result<Bytes, AgentError> {
            Ok(Bytes::from_static(SIG))
        }
    }

    impl Verifier for TestCrypto {
        fn verify(&self, _: &AgentInfo, _: &[u8], sig: &[u8]) -> Result<(), AgentError> {
            if sig == SIG {
                Ok(())
            } else {
                Err(AgentError::BadSignature("not the fake signature".into()))
            }
        }
    }

    /// Kitsune2 `happy_encode_decode`.
    const FIXTURE: &str = r#"{"agentInfo":"{\"agent\":\"dGVzdC1hZ2VudA\",\"space\":\"dGVzdC1zcGFjZQ\",\"createdAt\":\"1731690797907204\",\"expiresAt\":\"1731762797907204\",\"isTombstone\":false,\"url\":\"ws://test.com:80/test-url\",\"storageArc\":[42,330382099]}","signature":"ZmFrZS1zaWduYXR1cmU"}"#;
    const FIXTURE_INNER: &str = r#"{"agent":"dGVzdC1hZ2VudA","space":"dGVzdC1zcGFjZQ","createdAt":"1731690797907204","expiresAt":"1731762797907204","isTombstone":false,"url":"ws://test.com:80/test-url","storageArc":[42,330382099]}"#;

    fn fixture_info() -> AgentInfo {
        let now = Timestamp::from_micros(1731690797907204);
        AgentInfo {
            agent: AgentId::from_bytes(&b"test-agent"[..]),
            space: SpaceId::from_bytes(&b"test-space"[..]),
            created_at: now,
            expires_at: now.add_micros(72_000_000_000),
            is_tombstone: false,
            url: Some(Url::parse_canonical("ws://test.com:80/test-url").unwrap()),
            storage_arc: DhtArc::Arc(42, u32::MAX / 13),
        }
    }

    fn space() -> SpaceId {
        SpaceId::from_bytes(vec![7u8; 32])
    }

    fn key(seed: u8) -> AgentKey {
        AgentKey::from_secret_bytes(&[seed; 32])
    }

    fn signed(k: &AgentKey) -> AgentInfoSigned {
        let url = Url::parse("wss://sig.example.com/peer").unwrap();
        let info = AgentInfo::new(
            k.agent_id(),
            space(),
            Timestamp::from_micros(1_700_000_000_000_000),
            Some(url),
            DhtArc::FULL,
        );
        AgentInfoSigned::sign(k, info).unwrap()
    }

    #[test]
    fn happy_encode_decode_kitsune2_fixture() {
        let info = fixture_info();
        assert_eq!(info.encode().unwrap(), FIXTURE_INNER);
        assert_eq!(serde_json::to_string(&info).unwrap(), FIXTURE_INNER);
        let s = AgentInfoSigned::sign(&TestCrypto, info.clone()).unwrap();
        assert_eq!(s.encode(), FIXTURE);
        let dec = AgentInfoSigned::decode(&TestCrypto, FIXTURE).unwrap();
        assert_eq!(dec.info(), &info);
        assert_eq!(dec.inner_json(), FIXTURE_INNER);
        assert_eq!(dec.signature().as_ref(), SIG);
        assert_eq!(dec.encode(), FIXTURE);
        assert_eq!(dec, s);
        assert_eq!(dec.storage_arc, DhtArc::Arc(42, 330382099), "Deref");
    }

    #[test]
    fn ignores_future_extension_fields_kitsune2_fixture() {
        let json = r#"{"agentInfo":"{\"agent\":\"dGVzdC1hZ2VudA\",\"space\":\"dGVzdC1zcGFjZQ\",\"createdAt\":\"1731690797907204\",\"expiresAt\":\"1731762797907204\",\"isTombstone\":false,\"url\":\"ws://test.com:80/test-url\",\"storageArc\":[42,330382099],\"fakeField\":\"bla\"}","signature":"ZmFrZS1zaWduYXR1cmU","fakeField2":"bla2"}"#;
        let dec = AgentInfoSigned::decode(&TestCrypto, json).unwrap();
        assert_eq!(dec.info(), &fixture_info());
        assert!(
            dec.inner_json().contains("fakeField"),
            "inner kept verbatim"
        );
        assert!(!dec.encode().contains("fakeField2"), "outer re-encoded");
    }

    #[test]
    fn fills_in_default_fields_kitsune2_fixture() {
        let json = r#"{"agentInfo":"{\"agent\":\"dGVzdC1hZ2VudA\",\"space\":\"dGVzdC1zcGFjZQ\",\"createdAt\":\"1731690797907204\",\"expiresAt\":\"1731762797907204\",\"isTombstone\":false}","signature":"ZmFrZS1zaWduYXR1cmU"}"#;
        let dec = AgentInfoSigned::decode(&TestCrypto, json).unwrap();
        assert!(dec.url.is_none());
        assert_eq!(dec.storage_arc, DhtArc::Empty);
    }

    #[test]
    fn dies_with_invalid_signature_kitsune2_fixture() {
        let json = r#"{"agentInfo":"{\"agent\":\"dGVzdC1hZ2VudA\",\"space\":\"dGVzdC1zcGFjZQ\",\"createdAt\":\"1731690797907204\",\"expiresAt\":\"1731762797907204\",\"isTombstone\":false}","signature":""}"#;
        let err = AgentInfoSigned::decode(&TestCrypto, json).unwrap_err();
        assert!(matches!(err, AgentError::BadSignature(_)), "{err}");
        // Ed25519: the fixture's 10-byte agent id is not a key.
        let err = AgentInfoSigned::decode(&Ed25519Verifier, FIXTURE).unwrap_err();
        assert!(matches!(err, AgentError::BadKey(_)), "{err}");
    }

    #[test]
    fn null_url_and_arc_encode_as_null() {
        let t = AgentInfo::tombstone(
            AgentId::from_bytes(&b"a"[..]),
            SpaceId::from_bytes(&b"s"[..]),
            Timestamp::from_micros(5),
        );
        assert_eq!(
            t.encode().unwrap(),
            r#"{"agent":"YQ","space":"cw","createdAt":"5","expiresAt":"1200000005","isTombstone":true,"url":null,"storageArc":null}"#
        );
        let back: AgentInfo = serde_json::from_str(&t.encode().unwrap()).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn rfc8032_test_vector_1() {
        // RFC 8032 §7.1 TEST 1: empty message.
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        let secret: [u8; 32] =
            hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .try_into()
                .unwrap();
        let k = AgentKey::from_secret_bytes(&secret);
        assert_eq!(
            k.agent_id().as_bytes(),
            hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        );
        let sig = hex(
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        );
        assert_eq!(k.sign_bytes(b"").to_vec(), sig);
        let info = AgentInfo::tombstone(k.agent_id(), space(), Timestamp(0));
        Ed25519Verifier.verify(&info, b"", &sig).unwrap();
        assert_eq!(k.secret_bytes(), secret);
    }

    #[test]
    fn ed25519_sign_decode_round_trip() {
        let k = key(1);
        let s = signed(&k);
        assert_eq!(s.signature().len(), 64);
        assert_eq!(s.agent.as_bytes().len(), 32);
        let dec = AgentInfoSigned::decode(&Ed25519Verifier, s.encode()).unwrap();
        assert_eq!(dec, s);
        assert_eq!(dec.encode(), s.encode());
        assert!(s.encode().len() <= MAX_AGENT_INFO_BYTES);
    }

    #[test]
    fn generated_keys_differ_and_sign() {
        let a = AgentKey::generate().unwrap();
        let b = AgentKey::generate().unwrap();
        assert_ne!(a.agent_id(), b.agent_id());
        let s = signed(&a);
        AgentInfoSigned::decode(&Ed25519Verifier, s.encode()).unwrap();
        let again = AgentKey::from_secret_bytes(&a.secret_bytes());
        assert_eq!(again.agent_id(), a.agent_id());
        let dbg = format!("{a:?}");
        assert!(dbg.contains(&a.agent_id().to_b64()));
        assert!(!dbg.contains(&URL_SAFE_NO_PAD.encode(a.secret_bytes())));
    }

    #[test]
    fn key_refuses_to_sign_for_another_agent() {
        let info = AgentInfo::tombstone(key(2).agent_id(), space(), Timestamp(1));
        let err = AgentInfoSigned::sign(&key(1), info).unwrap_err();
        assert!(matches!(err, AgentError::BadKey(_)));
    }

    #[test]
    fn tampered_inner_or_signature_fails() {
        let k = key(3);
        let s = signed(&k);
        // Inner: still valid JSON, one digit of createdAt changed.
        let inner = s
            .inner_json()
            .replacen("1700000000000000", "1700000000000001", 1);
        assert_ne!(inner, s.inner_json());
        let err = AgentInfoSigned::from_parts(&Ed25519Verifier, inner, s.signature().clone())
            .unwrap_err();
        assert_eq!(err, AgentError::BadSignature("does not verify".into()));
        // Signature: one bit flipped in each byte (unoptimised ed25519 is slow in tests).
        for i in 0..64 {
            let mut sig = s.signature().to_vec();
            sig[i] ^= 1 << (i % 8);
            let r = AgentInfoSigned::from_parts(
                &Ed25519Verifier,
                s.inner_json().to_string(),
                Bytes::from(sig),
            );
            assert!(matches!(r, Err(AgentError::BadSignature(_))), "bit {i}");
        }
        // Signed by another key for the same agent id.
        let forged = key(4).sign_bytes(s.inner_json().as_bytes());
        let r = AgentInfoSigned::from_parts(
            &Ed25519Verifier,
            s.inner_json().to_string(),
            Bytes::copy_from_slice(&forged),
        );
        assert!(matches!(r, Err(AgentError::BadSignature(_))));
    }

    #[test]
    fn wrong_length_signatures_and_keys() {
        let k = key(5);
        let s = signed(&k);
        for len in [0, 1, 63, 65, 128] {
            let r = AgentInfoSigned::from_parts(
                &Ed25519Verifier,
                s.inner_json().to_string(),
                Bytes::from(vec![1u8; len]),
            );
            assert!(matches!(r, Err(AgentError::BadSignature(_))), "len {len}");
        }
        let sig = [0u8; 64];
        for len in [0, 1, 31, 33, 64] {
            let mut info = s.info().clone();
            info.agent = AgentId::from_bytes(vec![9u8; len]);
            let r = Ed25519Verifier.verify(&info, b"m", &sig);
            assert!(matches!(r, Err(AgentError::BadKey(_))), "len {len}");
        }
        // 32 bytes that do not decompress to a curve point (y = 2 is not on the curve).
        let mut y2 = [0u8; 32];
        y2[0] = 2;
        let mut info = s.info().clone();
        info.agent = AgentId::from_bytes(y2.to_vec());
        let r = Ed25519Verifier.verify(&info, b"m", &sig);
        assert!(matches!(r, Err(AgentError::BadKey(_))), "{r:?}");
        // A small-order key (identity point) is refused by verify_strict.
        let mut ident = [0u8; 32];
        ident[0] = 1;
        info.agent = AgentId::from_bytes(ident.to_vec());
        assert!(Ed25519Verifier.verify(&info, b"m", &sig).is_err());
    }

    #[test]
    fn too_large_is_refused_both_ways() {
        let k = key(6);
        let long = format!("wss://sig.example.com:443/{}", "x".repeat(700));
        let info = AgentInfo::new(
            k.agent_id(),
            space(),
            Timestamp(1),
            Some(Url::parse(&long).unwrap()),
            DhtArc::FULL,
        );
        let err = AgentInfoSigned::sign(&k, info.clone()).unwrap_err();
        assert!(
            matches!(err, AgentError::TooLarge { max: 1024, .. }),
            "{err}"
        );
        // Incoming: checked before the signature.
        let inner = info.encode().unwrap();
        let sig = Bytes::copy_from_slice(&k.sign_bytes(inner.as_bytes()));
        let outer = serde_json::to_string(&OuterRef {
            agent_info: &inner,
            signature: &URL_SAFE_NO_PAD.encode(&sig),
        })
        .unwrap();
        let err = AgentInfoSigned::decode(&Ed25519Verifier, &outer).unwrap_err();
        assert!(matches!(err, AgentError::TooLarge { .. }), "{err}");
        // Whitespace in the input does not count.
        let s = signed(&k);
        let padded = format!("{}{}", " ".repeat(2000), s.encode());
        assert_eq!(
            AgentInfoSigned::decode(&Ed25519Verifier, padded).unwrap(),
            s
        );
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        use AgentError::*;
        let good_inner = FIXTURE_INNER.replace('"', "\\\"");
        let with_inner =
            |inner: &str| format!(r#"{{"agentInfo":"{inner}","signature":"ZmFrZS1zaWduYXR1cmU"}}"#);
        type IsExpected = fn(&AgentError) -> bool;
        let cases: Vec<(String, IsExpected)> = vec![
            (String::new(), |e| matches!(e, Json(_))),
            ("null".into(), |e| matches!(e, Json(_))),
            ("[]".into(), |e| matches!(e, Json(_))),
            ("42".into(), |e| matches!(e, Json(_))),
            ("\u{0}\u{ff}".into(), |e| matches!(e, Json(_))),
            ("{}".into(), |e| matches!(e, Json(_))),
            (r#"{"agentInfo":5,"signature":"AA"}"#.into(), |e| {
                matches!(e, Json(_))
            }),
            (r#"{"agentInfo":"{}","signature":5}"#.into(), |e| {
                matches!(e, Json(_))
            }),
            (r#"{"agentInfo":"{}"}"#.into(), |e| matches!(e, Json(_))),
            (
                format!(r#"{{"agentInfo":"{good_inner}","signature":"ZmFrZS1zaWduYXR1cmU="}}"#),
                |e| matches!(e, BadSignature(_)),
            ),
            (
                format!(r#"{{"agentInfo":"{good_inner}","signature":"a+b/"}}"#),
                |e| matches!(e, BadSignature(_)),
            ),
            (
                format!(
                    r#"{{"agentInfo":"{good_inner}","agentInfo":"{good_inner}","signature":"AA"}}"#
                ),
                |e| matches!(e, Json(_)),
            ),
            (with_inner(""), |e| matches!(e, InnerJson(_))),
            (with_inner("not json"), |e| matches!(e, InnerJson(_))),
            (with_inner("[]"), |e| matches!(e, InnerJson(_))),
            (with_inner("{}"), |e| matches!(e, InnerJson(_))),
            (
                with_inner(&FIXTURE_INNER[..FIXTURE_INNER.len() / 2].replace('"', "\\\"")),
                |e| matches!(e, InnerJson(_)),
            ),
        ];
        for (json, ok) in &cases {
            let err = AgentInfoSigned::decode(&TestCrypto, json).unwrap_err();
            assert!(ok(&err), "{json:?} gave {err:?}");
        }
        // Wrong field types inside, one at a time.
        for (from, to) in [
            (
                r#"\"createdAt\":\"1731690797907204\""#,
                r#"\"createdAt\":1731690797907204"#,
            ),
            (
                r#"\"createdAt\":\"1731690797907204\""#,
                r#"\"createdAt\":\"1e3\""#,
            ),
            (
                r#"\"createdAt\":\"1731690797907204\""#,
                r#"\"createdAt\":\"99999999999999999999\""#,
            ),
            (
                r#"\"expiresAt\":\"1731762797907204\""#,
                r#"\"expiresAt\":null"#,
            ),
            (r#"\"isTombstone\":false"#, r#"\"isTombstone\":\"false\""#),
            (r#"\"isTombstone\":false,"#, ""),
            (
                r#"\"agent\":\"dGVzdC1hZ2VudA\""#,
                r#"\"agent\":\"dGVzdC1hZ2VudA==\""#,
            ),
            (r#"\"agent\":\"dGVzdC1hZ2VudA\""#, r#"\"agent\":[1,2]"#),
            (r#"\"space\":\"dGVzdC1zcGFjZQ\""#, r#"\"space\":null"#),
            (
                r#"\"url\":\"ws://test.com:80/test-url\""#,
                r#"\"url\":\"ws://test.com/test-url\""#,
            ),
            (
                r#"\"url\":\"ws://test.com:80/test-url\""#,
                r#"\"url\":\"ftp://test.com:80\""#,
            ),
            (r#"\"url\":\"ws://test.com:80/test-url\""#, r#"\"url\":7"#),
            (r#"\"storageArc\":[42,330382099]"#, r#"\"storageArc\":[42]"#),
            (
                r#"\"storageArc\":[42,330382099]"#,
                r#"\"storageArc\":[-1,3]"#,
            ),
            (
                r#"\"storageArc\":[42,330382099]"#,
                r#"\"storageArc\":\"full\""#,
            ),
        ] {
            let json = FIXTURE.replace(from, to);
            assert_ne!(json, FIXTURE, "{from}");
            let err = AgentInfoSigned::decode(&TestCrypto, &json).unwrap_err();
            assert!(matches!(err, InnerJson(_)), "{to}: {err:?}");
        }
    }

    #[test]
    fn every_truncation_and_byte_flip_is_handled() {
        let k = key(7);
        let s = signed(&k);
        let enc = s.encode().as_bytes().to_vec();
        for n in 0..enc.len() {
            assert!(
                AgentInfoSigned::decode(&Ed25519Verifier, &enc[..n]).is_err(),
                "{n}"
            );
        }
        // Flips exercise the parsers; a verifier that accepts only the original message keeps
        // this fast (ed25519 itself is covered by `tampered_inner_or_signature_fails`).
        struct Exact(String, Bytes);
        impl Verifier for Exact {
            fn verify(&self, _: &AgentInfo, m: &[u8], sig: &[u8]) -> Result<(), AgentError> {
                if m == self.0.as_bytes() && sig == self.1 {
                    Ok(())
                } else {
                    Err(AgentError::BadSignature("not the original".into()))
                }
            }
        }
        let exact = Exact(s.inner_json().to_string(), s.signature().clone());
        let mut accepted = 0;
        for i in 0..enc.len() {
            for x in [0x01u8, 0x20, 0x80] {
                let mut m = enc.clone();
                m[i] ^= x;
                // Must not panic; any success must be byte-identical content.
                if let Ok(d) = AgentInfoSigned::decode(&exact, &m) {
                    assert_eq!(d.inner_json(), s.inner_json(), "flip {i} {x}");
                    assert_eq!(d.signature(), s.signature(), "flip {i} {x}");
                    accepted += 1;
                }
            }
        }
        // Every flip changes a key name, the inner string or the signature: none may pass.
        assert_eq!(accepted, 0);
    }

    #[test]
    fn decode_list_returns_entries_individually() {
        let a = signed(&key(8));
        let b = signed(&key(9));
        let mut tampered = signed(&key(10)).encode().to_string();
        tampered = tampered.replacen("1700000000000000", "1700000000000001", 1);
        let list = format!(
            "[{}, 5, {{\"x\":1}}, {tampered}, {}]",
            a.encode(),
            b.encode()
        );
        let out = AgentInfoSigned::decode_list(&Ed25519Verifier, &list).unwrap();
        assert_eq!(out.len(), 5);
        assert_eq!(out[0].as_ref().unwrap(), &a);
        assert!(matches!(out[1], Err(AgentError::Json(_))));
        assert!(matches!(out[2], Err(AgentError::Json(_))));
        assert!(matches!(out[3], Err(AgentError::BadSignature(_))));
        assert_eq!(out[4].as_ref().unwrap(), &b);

        assert!(
            AgentInfoSigned::decode_list(&Ed25519Verifier, "[]")
                .unwrap()
                .is_empty()
        );
        for bad in ["", "{}", a.encode(), "[", "[1,", "null", "\"[]\""] {
            let r = AgentInfoSigned::decode_list(&Ed25519Verifier, bad);
            assert!(matches!(r, Err(AgentError::Json(_))), "{bad}");
        }
    }

    #[test]
    fn lifetimes_and_tombstones() {
        let t0 = Timestamp::from_micros(1_000_000_000);
        let k = key(11);
        let url = Url::parse("ws://a.b:1/p").unwrap();
        let info = AgentInfo::new(k.agent_id(), space(), t0, Some(url), DhtArc::FULL);
        assert_eq!(info.expires_at, t0.add_micros(20 * 60 * 1_000_000));
        assert!(!info.is_tombstone);
        assert!(!info.is_expired(t0));
        assert!(!info.is_expired(info.expires_at.add_micros(-1)));
        assert!(info.is_expired(info.expires_at));
        assert!(info.check_not_expired(t0).is_ok());
        assert_eq!(
            info.check_not_expired(info.expires_at),
            Err(AgentError::Expired {
                expires_at: info.expires_at,
                now: info.expires_at
            })
        );
        // Re-sign once within 5 min of expiry: 15 min after creation.
        assert!(!info.needs_re_sign(t0.add_micros(15 * 60 * 1_000_000 - 1)));
        assert!(info.needs_re_sign(t0.add_micros(15 * 60 * 1_000_000)));

        let t = AgentInfo::tombstone(k.agent_id(), space(), t0);
        assert!(t.is_tombstone);
        assert_eq!(t.url, None);
        assert_eq!(t.storage_arc, DhtArc::Empty);
        assert_eq!(t.expires_at, info.expires_at);
        let s = AgentInfoSigned::sign(&k, t.clone()).unwrap();
        assert_eq!(
            AgentInfoSigned::decode(&Ed25519Verifier, s.encode())
                .unwrap()
                .info(),
            &t
        );

        // Saturates rather than overflowing.
        let late = AgentInfo::new(
            k.agent_id(),
            space(),
            Timestamp(i64::MAX),
            None,
            DhtArc::Empty,
        );
        assert_eq!(late.expires_at, Timestamp(i64::MAX));
        assert!(late.needs_re_sign(Timestamp(i64::MAX)));
    }
}
