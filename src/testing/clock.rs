//! A virtual clock: time moves only when a test moves it.

use std::cell::RefCell;
use std::rc::Rc;
use std::task::{Poll, Waker};

use futures::FutureExt;
use futures::future::{LocalBoxFuture, poll_fn};

use crate::api::Clock;
use crate::model::time::Timestamp;

#[derive(Default)]
struct State {
    now: i64,
    sleepers: Vec<(i64, Waker)>,
}

/// A [`Clock`] whose time moves only by [`VirtualClock::advance_to`]: the time source of the
/// simulated network ([`crate::testing::SimNet`]), of [`crate::store::MemOpStore`]s in tests
/// (through [`VirtualClock::reader`]) and of async drivers run on a local executor
/// ([`crate::testing::run_until`]). Clones share one time.
#[derive(Clone, Default)]
pub struct VirtualClock(Rc<RefCell<State>>);

impl std::fmt::Debug for VirtualClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("VirtualClock")
            .field(&self.0.borrow().now)
            .finish()
    }
}

impl VirtualClock {
    /// A clock reading `start`.
    pub fn new(start: Timestamp) -> Self {
        let c = VirtualClock::default();
        c.0.borrow_mut().now = start.0;
        c
    }

    /// The earliest time a pending [`Clock::sleep_until`] waits for, if any. (A sleep whose
    /// future was dropped may still be listed until its time comes; waking it is harmless.)
    pub fn next_wake(&self) -> Option<Timestamp> {
        self.0
            .borrow()
            .sleepers
            .iter()
            .map(|(t, _)| Timestamp(*t))
            .min()
    }

    /// Moves the time to `t` (never backwards: an earlier `t` is ignored) and wakes every
    /// sleep that is due.
    pub fn advance_to(&self, t: Timestamp) {
        let due: Vec<Waker> = {
            let mut s = self.0.borrow_mut();
            s.now = s.now.max(t.0);
            let now = s.now;
            let (due, rest): (Vec<_>, Vec<_>) =
                s.sleepers.drain(..).partition(|(at, _)| *at <= now);
            s.sleepers = rest;
            due.into_iter().map(|(_, w)| w).collect()
        };
        due.into_iter().for_each(Waker::wake);
    }

    /// A `now` function reading this clock, e.g. for [`crate::store::MemOpStore::new`].
    pub fn reader(&self) -> impl Fn() -> Timestamp + 'static {
        let c = self.clone();
        move || c.now()
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.borrow().now)
    }

    fn sleep_until(&self, at: Timestamp) -> LocalBoxFuture<'_, ()> {
        poll_fn(move |cx| {
            let mut s = self.0.borrow_mut();
            if s.now >= at.0 {
                Poll::Ready(())
            } else {
                s.sleepers.push((at.0, cx.waker().clone()));
                Poll::Pending
            }
        })
        .boxed_local()
    }
}

/// Runs a local executor on virtual time: runs every task until none can move, then moves
/// `clock` to its earliest pending sleep, and so on, until `done()` holds, no sleep is
/// pending (nothing will ever move again) or `max_wakes` clock moves were made. Returns
/// `done()`.
pub fn run_until(
    pool: &mut futures::executor::LocalPool,
    clock: &VirtualClock,
    mut done: impl FnMut() -> bool,
    max_wakes: usize,
) -> bool {
    for _ in 0..max_wakes {
        pool.run_until_stalled();
        if done() {
            return true;
        }
        match clock.next_wake() {
            Some(t) => clock.advance_to(t),
            None => break,
        }
    }
    pool.run_until_stalled();
    done()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleeps_wake_when_time_reaches_them_and_not_before() {
        let c = VirtualClock::new(Timestamp(100));
        let mut pool = futures::executor::LocalPool::new();
        let woke = Rc::new(std::cell::Cell::new(false));
        let (c2, w) = (c.clone(), woke.clone());
        use futures::task::LocalSpawnExt;
        pool.spawner()
            .spawn_local(async move {
                c2.sleep_until(Timestamp(150)).await;
                w.set(true);
            })
            .unwrap();
        pool.run_until_stalled();
        assert_eq!(c.next_wake(), Some(Timestamp(150)));
        c.advance_to(Timestamp(149));
        pool.run_until_stalled();
        assert!(!woke.get());
        assert!(run_until(&mut pool, &c, || woke.get(), 10));
        assert_eq!(c.now(), Timestamp(150));
        c.advance_to(Timestamp(10));
        assert_eq!(c.now(), Timestamp(150), "time never goes back");
    }
}
