//! When to reconnect a lost signal (sbd) connection, and what to call the link's state
//! meanwhile. Sans-IO: the browser glue (`crate::browser::sbd_reconnect`, wasm32 only) asks
//! [`Reconnect`] for the next delay and reports outcomes; nothing here knows of sockets or
//! timers, so the policy is tested natively under virtual time.
//!
//! Rules:
//! - Back-off: attempt `n` (0-based, counting failures since the last success) waits
//!   `min(max, base · 2ⁿ)` scaled by a uniform jitter factor in `[1 − jitter, 1]`
//!   ("equal jitter" style: never longer than the cap, spread so that tabs that lost the same
//!   server do not all come back at the same instant). Defaults: 0.5 s doubling to 30 s,
//!   jitter 0.5.
//! - State: [`LinkState::Connected`] while a connection is up; [`LinkState::Reconnecting`]
//!   while retrying; [`LinkState::Offline`] when the browser says it is offline
//!   (`navigator.onLine` false) or after [`ReconnectConfig::offline_after`] failed attempts
//!   in a row (default 5, about 8 s of trying). Retries go on while offline; a success is
//!   `Connected` again.

use std::time::Duration;

use crate::model::config::ConfigError;
use crate::model::time::Timestamp;

/// The back-off and the offline rule (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq)]
pub struct ReconnectConfig {
    /// Delay before the first retry (before jitter). Default 0.5 s.
    pub base: Duration,
    /// Largest delay (before jitter). Default 30 s.
    pub max: Duration,
    /// Fraction of each delay that is random, in `[0, 1]`. Default 0.5.
    pub jitter: f64,
    /// Failed attempts in a row after which the link is called offline. Default 5.
    pub offline_after: u32,
}

impl Default for ReconnectConfig {
    fn default() -> Self {
        ReconnectConfig {
            base: Duration::from_millis(500),
            max: Duration::from_secs(30),
            jitter: 0.5,
            offline_after: 5,
        }
    }
}

impl ReconnectConfig {
    /// Checks the fields.
    ///
    /// # Errors
    /// [`ConfigError`] naming `base` (zero), `max` (below `base`), `jitter` (outside
    /// `[0, 1]`) or `offline_after` (zero).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field: &'static str, rule: &'static str| Err(ConfigError { field, rule });
        if self.base.is_zero() {
            return bad("base", "must be more than zero");
        }
        if self.max < self.base {
            return bad("max", "must be at least base");
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return bad("jitter", "must be between 0 and 1");
        }
        if self.offline_after == 0 {
            return bad("offline_after", "must be at least 1");
        }
        Ok(())
    }
}

/// What the app is told about the signal link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// The sbd connection is up.
    Connected,
    /// Lost; retrying.
    Reconnecting,
    /// The browser is offline, or retries keep failing (still retrying).
    Offline,
}

impl LinkState {
    /// `"connected"`, `"reconnecting"` or `"offline"` (the JS `StatusEvent.state`).
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Connected => "connected",
            LinkState::Reconnecting => "reconnecting",
            LinkState::Offline => "offline",
        }
    }
}

/// The next retry, as [`Reconnect::failed`] plans it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Failed attempts in a row so far (1 after the first loss or failure).
    pub attempt: u32,
    /// When to try again.
    pub at: Timestamp,
    /// The delay from the failure to `at`.
    pub delay: Duration,
}

/// The reconnect policy of one link: counts failures, plans retries, names the state.
#[derive(Debug, Clone)]
pub struct Reconnect {
    cfg: ReconnectConfig,
    failures: u32,
    connected: bool,
    browser_offline: bool,
    rng: u64,
}

impl Reconnect {
    /// A policy for a link that is up (the first connection succeeded); `seed` feeds the
    /// jitter.
    ///
    /// # Errors
    /// [`ConfigError`] from [`ReconnectConfig::validate`].
    pub fn new(cfg: ReconnectConfig, seed: u64) -> Result<Self, ConfigError> {
        cfg.validate()?;
        Ok(Reconnect {
            cfg,
            failures: 0,
            connected: true,
            browser_offline: false,
            rng: seed,
        })
    }

    /// The link is up: failures are forgotten.
    pub fn connected(&mut self) {
        self.connected = true;
        self.failures = 0;
    }

    /// The link was lost, or an attempt failed, at `now`: plans the next attempt.
    pub fn failed(&mut self, now: Timestamp) -> Retry {
        self.connected = false;
        let n = self.failures;
        self.failures = self.failures.saturating_add(1);
        let full = self
            .cfg
            .base
            .saturating_mul(1u32 << n.min(20))
            .min(self.cfg.max);
        let cut = full.mul_f64(self.cfg.jitter * self.unit());
        let delay = full - cut.min(full);
        Retry {
            attempt: self.failures,
            at: now.plus(delay),
            delay,
        }
    }

    /// What the browser says (`navigator.onLine`, `online`/`offline` events).
    pub fn set_browser_online(&mut self, online: bool) {
        self.browser_offline = !online;
    }

    /// The state to report now (see the [module docs](self)).
    pub fn state(&self) -> LinkState {
        if self.connected {
            LinkState::Connected
        } else if self.browser_offline || self.failures >= self.cfg.offline_after {
            LinkState::Offline
        } else {
            LinkState::Reconnecting
        }
    }

    /// Failed attempts in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// A uniform number in `[0, 1)` (splitmix64).
    fn unit(&mut self) -> f64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(d: Duration) -> u128 {
        d.as_millis()
    }

    #[test]
    fn delays_double_from_base_to_the_cap_within_the_jitter() {
        let mut r = Reconnect::new(ReconnectConfig::default(), 7).unwrap();
        let mut now = Timestamp(0);
        let mut full = 500u128;
        for i in 1..=12 {
            let retry = r.failed(now);
            assert_eq!(retry.attempt, i);
            let d = ms(retry.delay);
            assert!(
                d <= full && d >= full / 2,
                "attempt {i}: {d} ms, cap {full}"
            );
            assert_eq!(retry.at, now.plus(retry.delay));
            now = retry.at; // virtual time: the next attempt fails at once
            full = (full * 2).min(30_000);
        }
        assert!(ms(r.failed(now).delay) >= 15_000);
    }

    #[test]
    fn jitter_spreads_tabs_and_is_deterministic_per_seed() {
        let delays = |seed| {
            let mut r = Reconnect::new(ReconnectConfig::default(), seed).unwrap();
            (0..6)
                .map(|_| r.failed(Timestamp(0)).delay)
                .collect::<Vec<_>>()
        };
        assert_eq!(delays(1), delays(1));
        assert_ne!(delays(1), delays(2));
        let cfg = ReconnectConfig {
            jitter: 0.0,
            ..ReconnectConfig::default()
        };
        let mut r = Reconnect::new(cfg, 3).unwrap();
        let fixed: Vec<u128> = (0..4).map(|_| ms(r.failed(Timestamp(0)).delay)).collect();
        assert_eq!(fixed, [500, 1000, 2000, 4000]);
    }

    #[test]
    fn state_follows_failures_success_and_the_browser() {
        let mut r = Reconnect::new(ReconnectConfig::default(), 1).unwrap();
        assert_eq!(r.state(), LinkState::Connected);
        for _ in 0..4 {
            r.failed(Timestamp(0));
            assert_eq!(r.state(), LinkState::Reconnecting);
        }
        r.failed(Timestamp(0));
        assert_eq!(r.state(), LinkState::Offline);
        r.connected();
        assert_eq!((r.state(), r.failures()), (LinkState::Connected, 0));
        // A success starts the back-off over.
        assert!(ms(r.failed(Timestamp(0)).delay) <= 500);
        r.set_browser_online(false);
        assert_eq!(r.state(), LinkState::Offline);
        r.set_browser_online(true);
        assert_eq!(r.state(), LinkState::Reconnecting);
    }

    #[test]
    fn bad_configs_are_refused_naming_the_field() {
        let bad = [
            ReconnectConfig {
                base: Duration::ZERO,
                ..Default::default()
            },
            ReconnectConfig {
                max: Duration::from_millis(1),
                ..Default::default()
            },
            ReconnectConfig {
                jitter: 1.5,
                ..Default::default()
            },
            ReconnectConfig {
                offline_after: 0,
                ..Default::default()
            },
        ];
        for (cfg, field) in bad
            .into_iter()
            .zip(["base", "max", "jitter", "offline_after"])
        {
            let e = Reconnect::new(cfg, 0).unwrap_err();
            assert!(e.to_string().contains(field), "{e}");
        }
    }
}
