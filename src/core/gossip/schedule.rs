//! When to start rounds and with whom: a pure interval scheduler and peer selection.

use std::time::Duration;

use crate::model::arc::SectorSet;
use crate::model::time::Timestamp;
use crate::model::url::Url;
use crate::sort;

/// The pause before the next initiated round: [`Scheduler::fast`] after a round that found a
/// difference, doubling after each round that found none, up to [`Scheduler::steady`].
/// Kitsune2 has one fixed `initiateIntervalMs` (120 s) plus `initialInitiateIntervalMs` at
/// start only; fennec keeps repairing at the fast pace while divergence is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduler {
    /// Interval while rounds find differences.
    pub fast: Duration,
    /// Interval once rounds find none.
    pub steady: Duration,
    current: Duration,
}

impl Scheduler {
    /// Starts fast (a fresh peer has everything to learn).
    pub fn new(fast: Duration, steady: Duration) -> Scheduler {
        Scheduler {
            fast,
            steady: steady.max(fast),
            current: fast,
        }
    }

    /// The current pause between initiated rounds.
    pub fn interval(&self) -> Duration {
        self.current
    }

    /// Records a finished round: a difference resets to fast, none doubles toward steady.
    pub fn on_round(&mut self, found_diff: bool) {
        self.current = if found_diff {
            self.fast
        } else {
            (self.current * 2).min(self.steady)
        };
    }

    /// When to initiate next after a round that ended at `ended`.
    pub fn next_at(&self, ended: Timestamp) -> Timestamp {
        ended.plus(self.current)
    }
}

/// A peer we could gossip with, as the caller (the peer store) knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Where it is reached.
    pub url: Url,
    /// The sectors its agents store.
    pub sectors: SectorSet,
    /// `false` when the caller marked it unresponsive (a timed-out round, a failed connect).
    pub responsive: bool,
    /// When we last completed a round with it (`None`: never).
    pub last_gossip: Option<Timestamp>,
}

/// Up to `n` peers to initiate with: responsive, sharing a sector with `ours`, not in
/// `busy_with` (a round is open), the longest since last gossip first (never first of all),
/// ties by URL so the choice is deterministic. Kitsune2 `crates/gossip/src/initiate.rs` picks
/// one peer per interval with the same preferences; we pick several (concurrent rounds).
pub fn pick_peers(
    candidates: &[Candidate],
    ours: &SectorSet,
    busy_with: impl Fn(&Url) -> bool,
    n: usize,
) -> Vec<Url> {
    let mut eligible: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| c.responsive && !busy_with(&c.url))
        .filter(|c| !c.sectors.intersection(ours).is_empty())
        .collect();
    // Unstable: only the URL is kept, and ties are equal URLs.
    sort::sort_by(&mut eligible, |a, b| {
        a.last_gossip
            .cmp(&b.last_gossip)
            .then_with(|| a.url.as_str().cmp(b.url.as_str()))
    });
    eligible
        .into_iter()
        .take(n)
        .map(|c| c.url.clone())
        .collect()
}
