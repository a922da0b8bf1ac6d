//! [`ConfigError`]: why a configuration was refused. Every config — the core's
//! ([`crate::core::space::SpaceConfig`] and the module configs inside it) and the network
//! layer's ([`crate::net::conn::NetConfig`], [`crate::net::sbd::SbdConfig`]) — states its
//! intervals and timeouts as [`std::time::Duration`] and has a `validate()` that names the
//! first bad field, instead of clamping it silently.

use std::time::Duration;

/// A config field whose value cannot be run with: `field` is its path (inside
/// [`crate::core::space::SpaceConfig`], e.g. `"fetch.request_timeout"`; `"net."` for
/// [`crate::net::conn::NetConfig`], `"sbd."` for [`crate::net::sbd::SbdConfig`]), `rule` what
/// it must satisfy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config field `{field}` {rule}")]
pub struct ConfigError {
    /// The field's path, e.g. `"catch_up.round_timeout"`.
    pub field: &'static str,
    /// What it must satisfy, e.g. `"must be at least 1"`.
    pub rule: &'static str,
}

/// `Err` naming `field` unless `n >= 1`.
pub(crate) fn at_least_one(field: &'static str, n: u64) -> Result<(), ConfigError> {
    if n >= 1 {
        Ok(())
    } else {
        Err(ConfigError {
            field,
            rule: "must be at least 1",
        })
    }
}

/// `Err` naming `field` unless `d` is at least one µs (the clock's resolution).
pub(crate) fn positive(field: &'static str, d: Duration) -> Result<(), ConfigError> {
    if d >= Duration::from_micros(1) {
        Ok(())
    } else {
        Err(ConfigError {
            field,
            rule: "must be at least 1 µs",
        })
    }
}
