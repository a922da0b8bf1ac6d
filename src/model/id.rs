//! Ids and locations, as Kitsune2 defines them (`crates/api/src/id.rs`).
//!
//! An id is the raw bytes of a hash or public key, without prefix or suffix. In JSON it is
//! base64 URL-safe without padding. Its *location* places it on the u32 DHT ring; how is a
//! value of the network configuration ([`Locator`]), not a process global as in Kitsune2.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Opaque id bytes. Serde: base64url-nopad string. Display: the same string.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Id(pub Bytes);

impl Id {
    /// An id from raw bytes.
    pub fn from_bytes(b: impl Into<Bytes>) -> Self {
        Id(b.into())
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Kitsune2's default location: XOR-fold the bytes into 4 (`out[i % 4] ^= b[i]`), read
    /// little-endian. Networks that place ids otherwise use a [`Locator`].
    pub fn loc(&self) -> u32 {
        xor_fold_loc(&self.0)
    }

    /// The base64url-nopad form used in JSON, URLs and bootstrap paths.
    pub fn to_b64(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.0)
    }

    /// Parses the base64url-nopad form.
    ///
    /// # Errors
    /// [`IdError::Base64`] if `s` is not base64url without padding.
    pub fn from_b64(s: &str) -> Result<Self, IdError> {
        URL_SAFE_NO_PAD
            .decode(s)
            .map(|v| Id(Bytes::from(v)))
            .map_err(|e| IdError::Base64(format!("{s:?}: {e}")))
    }
}

/// Errors from parsing ids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The text is not base64url-nopad.
    #[error("invalid base64url id {0}")]
    Base64(String),
}

/// XOR-fold location (Kitsune2 `default_loc`): empty bytes are location 0.
pub fn xor_fold_loc(b: &[u8]) -> u32 {
    let mut out = [0u8; 4];
    for (i, x) in b.iter().enumerate() {
        out[i % 4] ^= x;
    }
    u32::from_le_bytes(out)
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_b64())
    }
}

impl std::fmt::Debug for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_b64())
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_b64())
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Id::from_b64(&s).map_err(serde::de::Error::custom)
    }
}

macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Id);

        impl $name {
            /// From raw bytes.
            pub fn from_bytes(b: impl Into<Bytes>) -> Self {
                $name(Id::from_bytes(b))
            }
            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8] {
                self.0.as_bytes()
            }
            /// Kitsune2's default XOR-fold location; see [`Locator`] for others.
            pub fn loc(&self) -> u32 {
                self.0.loc()
            }
            /// Parses base64url-nopad.
            ///
            /// # Errors
            /// [`IdError::Base64`] on bad text.
            pub fn from_b64(s: &str) -> Result<Self, IdError> {
                Id::from_b64(s).map($name)
            }
            /// The base64url-nopad form.
            pub fn to_b64(&self) -> String {
                self.0.to_b64()
            }
        }

        impl From<Id> for $name {
            fn from(id: Id) -> Self {
                $name(id)
            }
        }

        impl From<Bytes> for $name {
            fn from(b: Bytes) -> Self {
                $name(Id(b))
            }
        }

        impl std::ops::Deref for $name {
            type Target = Id;
            fn deref(&self) -> &Id {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(&self.0, f)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }
    };
}

id_newtype!(
    /// An agent: by convention its 32-byte ed25519 public key.
    AgentId
);
id_newtype!(
    /// A space (one DHT network of agents and ops).
    SpaceId
);
id_newtype!(
    /// An op: the 32-byte hash of the encoded op (see `op.rs`).
    OpId
);

/// How a network maps ids to ring locations. Part of the network configuration, so that one
/// page can join networks that place ids differently (Kitsune2 uses process-global
/// callbacks; Holochain places op ids by bytes `[32..36]`).
#[derive(Clone, Copy)]
pub struct Locator {
    /// Location of agent and space ids.
    pub id: fn(&[u8]) -> u32,
    /// Location of op ids.
    pub op: fn(&[u8]) -> u32,
}

impl Locator {
    /// Kitsune2's default: XOR-fold for every kind of id.
    pub const XOR_FOLD: Locator = Locator {
        id: xor_fold_loc,
        op: xor_fold_loc,
    };

    /// Location of an agent or space id.
    pub fn loc_of(&self, id: &Id) -> u32 {
        (self.id)(id.as_bytes())
    }

    /// Location of an op id.
    pub fn op_loc(&self, id: &OpId) -> u32 {
        (self.op)(id.as_bytes())
    }
}

impl Default for Locator {
    fn default() -> Self {
        Locator::XOR_FOLD
    }
}

impl std::fmt::Debug for Locator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Locator")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loc_of_empty_is_zero() {
        assert_eq!(Id::default().loc(), 0);
    }

    #[test]
    fn loc_of_four_le_bytes_is_the_u32() {
        for u in [0, 42, 999, u32::MAX / 13, u32::MAX / 4, u32::MAX] {
            assert_eq!(Id::from_bytes(u.to_le_bytes().to_vec()).loc(), u);
        }
    }

    #[test]
    fn loc_matches_kitsune2_fixtures() {
        let fixtures: &[(&[u8], u32)] = &[
            (b"hello", 1819043079),
            (b"1", 49),
            (b"asntoheunatoheuntahoeusth", 454101873),
            (&[0xff; 6], 4294901760),
            (&[1, 2, 3, 230, 44, 77, 99, 82], 3026210605),
            (&[42, 0, 0, 0, 99, 0, 0, 0], 73),
        ];
        for (bytes, loc) in fixtures {
            assert_eq!(Id::from_bytes(bytes.to_vec()).loc(), *loc, "{bytes:?}");
        }
    }

    #[test]
    fn serde_matches_kitsune2_fixtures() {
        let fixtures: &[(&[u8], &str)] = &[
            (b"test-hash-1", "\"dGVzdC1oYXNoLTE\""),
            (b"s", "\"cw\""),
            (&[255; 7], "\"_________w\""),
        ];
        for (bytes, json) in fixtures {
            let id = AgentId::from_bytes(bytes.to_vec());
            assert_eq!(&serde_json::to_string(&id).unwrap(), json);
            let back: AgentId = serde_json::from_str(json).unwrap();
            assert_eq!(back, id);
        }
    }

    #[test]
    fn bad_base64_is_an_error() {
        assert!(serde_json::from_str::<OpId>("\"a+b/\"").is_err());
        assert!(Id::from_b64("cw==").is_err(), "padding is not accepted");
        assert!(matches!(Id::from_b64("!"), Err(IdError::Base64(_))));
    }

    #[test]
    fn locator_is_configurable_per_network() {
        fn last_byte(b: &[u8]) -> u32 {
            b.last().copied().unwrap_or(0) as u32
        }
        let loc = Locator {
            id: xor_fold_loc,
            op: last_byte,
        };
        let op = OpId::from_bytes(vec![1, 2, 3, 9]);
        assert_eq!(loc.op_loc(&op), 9);
        assert_eq!(Locator::default().op_loc(&op), op.loc());
        assert_eq!(loc.loc_of(&Id::from_bytes(b"hello".to_vec())), 1819043079);
    }
}
