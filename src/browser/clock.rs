//! The platform side of time: the wall clock and a [`Clock`] for drivers running in the
//! browser. Timers are `setTimeout` through `gloo-timers`, whose futures clear their timer
//! when dropped, so a driver that re-arms its wake-up on every event leaves no stale timers
//! behind. Every browser module takes its timers from here (one timer binding).

use futures::FutureExt;
use futures::future::LocalBoxFuture;
use wasm_bindgen::JsCast;

use crate::api::Clock;
use crate::model::time::Timestamp;

/// The current wall-clock time: `performance.timeOrigin + performance.now()` (sub-ms where
/// the page allows it), else `Date.now()` (ms). Works in windows and workers. The clock is
/// read for every event the drivers handle, so the `Performance` object and its
/// `timeOrigin` (fixed for the global's life, per the High Resolution Time spec) are looked
/// up once per thread: one call into JavaScript per reading instead of four.
pub fn now() -> Timestamp {
    let ms = PERFORMANCE.with(|p| match p {
        Some((perf, origin)) => origin + perf.now(),
        None => js_sys::Date::now(),
    });
    Timestamp::from_micros((ms * 1000.0) as i64)
}

thread_local! {
    static PERFORMANCE: Option<(web_sys::Performance, f64)> =
        performance().map(|p| {
            let origin = p.time_origin();
            (p, origin)
        });
}

fn performance() -> Option<web_sys::Performance> {
    let global = js_sys::global();
    if let Some(w) = global.dyn_ref::<web_sys::Window>() {
        return w.performance();
    }
    global
        .dyn_ref::<web_sys::WorkerGlobalScope>()?
        .performance()
}

/// Wall-clock time ([`now`]) and `setTimeout` wake-ups; works in windows and workers.
#[derive(Debug, Clone, Copy, Default)]
pub struct BrowserClock;

impl Clock for BrowserClock {
    fn now(&self) -> Timestamp {
        now()
    }

    fn sleep_until(&self, at: Timestamp) -> LocalBoxFuture<'_, ()> {
        sleep_ms(ms_until(at)).boxed_local()
    }
}

/// Whole milliseconds from now until `at`, rounded up (0 if `at` has passed).
pub fn ms_until(at: Timestamp) -> i64 {
    let us = at.micros_since(now()).max(0);
    us / 1000 + i64::from(us % 1000 > 0)
}

/// A thrown or rejected JavaScript value as text for error messages: `name: message` for a
/// `DOMException`, the message of an `Error`, a string as is, else its debug form.
pub fn describe_js(v: &wasm_bindgen::JsValue) -> String {
    if let Some(e) = v.dyn_ref::<web_sys::DomException>() {
        return format!("{}: {}", e.name(), e.message());
    }
    if let Some(e) = v.dyn_ref::<js_sys::Error>() {
        return String::from(e.message());
    }
    v.as_string().unwrap_or_else(|| format!("{v:?}"))
}

/// Resolves after `ms` milliseconds (negative = at once; capped at `setTimeout`'s
/// maximum of 2^31−1 ms, about 24.8 days). Dropping it clears the timer.
pub fn sleep_ms(ms: i64) -> gloo_timers::future::TimeoutFuture {
    let ms = ms.clamp(0, i64::from(i32::MAX)) as u32;
    gloo_timers::future::TimeoutFuture::new(ms)
}
