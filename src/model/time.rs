//! `Timestamp`: microseconds since the Unix epoch, as Kitsune2 counts time
//! (`crates/api/src/timestamp.rs`). This file reads no clock: the current time comes from a
//! `Clock` (`crate::api::Clock`): `browser::clock::now` in the browser, where
//! `SystemTime::now()` panics on wasm32-unknown-unknown, a virtual clock in tests.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `d` in whole µs, saturating at `i64::MAX` (about 292 000 years).
pub fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Microseconds (µs) since 1970-01-01T00:00:00Z, signed 64-bit like Kitsune2.
///
/// Serialises as a JSON number; inside agent infos it is a decimal string
/// (see [`serde_string`]).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The Unix epoch, `Timestamp(0)`.
    pub const UNIX_EPOCH: Timestamp = Timestamp(0);

    /// A timestamp from microseconds since the epoch.
    pub const fn from_micros(us: i64) -> Self {
        Timestamp(us)
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// A `SystemTime` as µs since the epoch (saturating). Native callers pass
    /// `SystemTime::now()`; never call that on wasm32-unknown-unknown, where it panics.
    pub fn from_system_time(t: std::time::SystemTime) -> Self {
        let us = |d: std::time::Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        match t.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => Timestamp(us(d)),
            Err(e) => Timestamp(-us(e.duration())),
        }
    }

    /// `self + us` µs, saturating at the ends of the i64 range.
    pub const fn add_micros(self, us: i64) -> Self {
        Timestamp(self.0.saturating_add(us))
    }

    /// `self + d`, saturating; parts of a µs are dropped.
    pub fn plus(self, d: Duration) -> Self {
        self.add_micros(micros(d))
    }

    /// `self - d`, saturating; parts of a µs are dropped.
    pub fn minus(self, d: Duration) -> Self {
        self.add_micros(-micros(d))
    }

    /// `self - other` in µs, saturating.
    pub const fn micros_since(self, other: Timestamp) -> i64 {
        self.0.saturating_sub(other.0)
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}µs", self.0)
    }
}

/// Serde helper for Kitsune2's agent-info timestamps: a decimal string such as
/// `"1731690797907204"` (`serde_string_timestamp` in Kitsune2's `agent.rs`).
pub mod serde_string {
    use super::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the µs value as a decimal string.
    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.0.to_string())
    }

    /// Reads a decimal string of µs; anything else is an error.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = String::deserialize(d)?;
        s.parse::<i64>()
            .map(Timestamp)
            .map_err(|_| serde::de::Error::custom(format!("timestamp is not a decimal i64: {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_after_2024_and_monotone_enough() {
        let a = Timestamp::from_system_time(std::time::SystemTime::now());
        let b = Timestamp::from_system_time(std::time::SystemTime::now());
        assert!(a.0 > 1_704_067_200_000_000, "now() = {a} is before 2024");
        assert!(b >= a);
    }

    #[test]
    fn json_is_a_plain_number() {
        assert_eq!(serde_json::to_string(&Timestamp(42)).unwrap(), "42");
        assert_eq!(
            serde_json::from_str::<Timestamp>("-7").unwrap(),
            Timestamp(-7)
        );
    }

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(Timestamp(i64::MAX).add_micros(1), Timestamp(i64::MAX));
        assert_eq!(Timestamp(10).micros_since(Timestamp(4)), 6);
        assert_eq!(Timestamp(i64::MIN).micros_since(Timestamp(1)), i64::MIN);
    }
}
