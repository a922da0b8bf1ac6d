//! Sync progress: how far the space is in fetching the ops it learnt it lacks, for an app's
//! progress bar ([`SpaceEvent::Sync`](super::SpaceEvent::Sync), JS `space.on("sync")`).
//!
//! A *round* starts when the fetch queue goes from empty to non-empty and ends when it is
//! empty again. Within a round, `fetched` counts ops fetched and committed to the store,
//! `failed` ops the fetch queue gave up, `remaining` ops still pending (queued, requested or
//! being stored), and `missing = fetched + failed + remaining` (never decreasing during a
//! round: ids announced while a round runs join it). Reports are throttled to one per
//! [`SYNC_REPORT_INTERVAL_US`], except the first and last of a round, which always go out;
//! a throttled change is reported when [`SyncTracker::due`] passes.

use crate::model::time::Timestamp;

/// Least time between two progress reports of a round (µs): 100 ms, ten redraws a second.
pub const SYNC_REPORT_INTERVAL_US: i64 = 100_000;

/// One progress report (counts of ops within the current round).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncProgress {
    /// Ops this round learnt we lack: `fetched + failed + remaining`.
    pub missing: u64,
    /// Ops fetched and stored this round.
    pub fetched: u64,
    /// Ops given up this round (every source failed; an `error` event of kind "fetch" each).
    pub failed: u64,
    /// Ops still to fetch; 0 in the last report of a round.
    pub remaining: u64,
}

/// Turns fetch-queue figures into [`SyncProgress`] reports (see the module docs).
#[derive(Debug, Default)]
pub(super) struct SyncTracker {
    /// The round's latest figures; `None` between rounds.
    current: Option<SyncProgress>,
    /// The last report of this round, and when it went out.
    reported: Option<(SyncProgress, Timestamp)>,
    /// The fetch queue's give-up counter when the round started.
    failed_base: u64,
}

impl SyncTracker {
    /// `n` fetched ops of the round were committed to the store.
    pub(super) fn stored(&mut self, n: usize) {
        if let Some(c) = &mut self.current {
            c.fetched += n as u64;
        }
    }

    /// The fetch queue now holds `remaining` ops and has given up `failed_total` since the
    /// space started: the report to emit now, if any.
    pub(super) fn update(
        &mut self,
        now: Timestamp,
        remaining: usize,
        failed_total: u64,
    ) -> Option<SyncProgress> {
        let c = match &mut self.current {
            Some(c) => c,
            None if remaining == 0 => return None,
            None => {
                self.failed_base = failed_total;
                self.current.insert(SyncProgress::default())
            }
        };
        c.remaining = remaining as u64;
        c.failed = failed_total.saturating_sub(self.failed_base);
        c.missing = c.missing.max(c.fetched + c.failed + c.remaining);
        let p = *c;
        if self.reported.is_some_and(|(r, _)| r == p) {
            return None;
        }
        let last = p.remaining == 0;
        let due = match self.reported {
            None => true,
            Some((_, at)) => last || now.micros_since(at) >= SYNC_REPORT_INTERVAL_US,
        };
        if !due {
            return None;
        }
        if last {
            self.current = None;
            self.reported = None;
        } else {
            self.reported = Some((p, now));
        }
        Some(p)
    }

    /// When a change held back by the throttle is to be reported.
    pub(super) fn due(&self) -> Option<Timestamp> {
        match (self.current, self.reported) {
            (Some(c), Some((r, at))) if c != r => Some(at.add_micros(SYNC_REPORT_INTERVAL_US)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(missing: u64, fetched: u64, failed: u64, remaining: u64) -> SyncProgress {
        SyncProgress {
            missing,
            fetched,
            failed,
            remaining,
        }
    }

    #[test]
    fn a_round_reports_its_start_throttled_steps_and_its_end() {
        let mut t = SyncTracker::default();
        let t0 = Timestamp(1_000_000);
        assert_eq!(
            t.update(t0, 0, 0),
            None,
            "no round while nothing is missing"
        );
        assert_eq!(t.update(t0, 10, 3), Some(p(10, 0, 0, 10)));
        t.stored(4);
        // Within the interval: held back, and due at its end.
        assert_eq!(t.update(t0.add_micros(10), 6, 3), None);
        assert_eq!(t.due(), Some(t0.add_micros(SYNC_REPORT_INTERVAL_US)));
        let t1 = t0.add_micros(SYNC_REPORT_INTERVAL_US);
        assert_eq!(t.update(t1, 6, 3), Some(p(10, 4, 0, 6)));
        assert_eq!(t.due(), None);
        // More ids announced mid-round join it; a give-up counts as failed.
        assert_eq!(t.update(t1.add_micros(1), 11, 3), None);
        t.stored(10);
        let t2 = t1.add_micros(2 * SYNC_REPORT_INTERVAL_US);
        assert_eq!(
            t.update(t2, 0, 4),
            Some(p(15, 14, 1, 0)),
            "the last report always goes out"
        );
        assert_eq!(t.due(), None);
        // The next round starts from zero.
        assert_eq!(t.update(t2.add_micros(1), 2, 4), Some(p(2, 0, 0, 2)));
    }

    #[test]
    fn an_unchanged_round_is_not_reported_again() {
        let mut t = SyncTracker::default();
        let t0 = Timestamp(0);
        assert!(t.update(t0, 5, 0).is_some());
        let later = t0.add_micros(10 * SYNC_REPORT_INTERVAL_US);
        assert_eq!(t.update(later, 5, 0), None);
        assert_eq!(t.due(), None);
    }
}
