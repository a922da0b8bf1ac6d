//! Time for drivers: the wall clock and `setTimeout` in the browser
//! (`crate::browser::clock::BrowserClock`), a virtual clock in tests
//! (`crate::testing::VirtualClock`). The sans-IO state machines never read a clock; their
//! drivers pass `now` in and sleep until the machine's next deadline.

use futures::future::LocalBoxFuture;

use crate::model::time::Timestamp;

/// Time for a driver.
pub trait Clock {
    /// The current time, µs since the Unix epoch.
    fn now(&self) -> Timestamp;
    /// Resolves at or after `at`. Must be cancel-safe (dropping it is fine).
    fn sleep_until(&self, at: Timestamp) -> LocalBoxFuture<'_, ()>;
}
