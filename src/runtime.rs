//! The platform side of time: a [`Clock`] for drivers running in the browser. Timers are
//! `setTimeout` through `gloo-timers`, whose futures clear their timer when dropped, so a
//! driver that re-arms its wake-up on every event leaves no stale timers behind.

#[cfg(target_arch = "wasm32")]
pub use browser::{BrowserClock, describe_js, sleep_ms};

#[cfg(target_arch = "wasm32")]
mod browser {
    use futures::FutureExt;
    use futures::future::LocalBoxFuture;

    use crate::space::Clock;
    use crate::time::Timestamp;

    /// Wall-clock time (`Timestamp::now`) and `setTimeout` wake-ups; works in windows and
    /// workers.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct BrowserClock;

    impl Clock for BrowserClock {
        fn now(&self) -> Timestamp {
            Timestamp::now()
        }

        fn sleep_until(&self, at: Timestamp) -> LocalBoxFuture<'_, ()> {
            let us = at.micros_since(Timestamp::now());
            let ms = us / 1000 + i64::from(us % 1000 > 0);
            sleep_ms(ms).boxed_local()
        }
    }

    /// A thrown or rejected JavaScript value as text for error messages: `name: message` for a
    /// `DOMException`, the message of an `Error`, a string as is, else its debug form.
    pub fn describe_js(v: &wasm_bindgen::JsValue) -> String {
        use wasm_bindgen::JsCast;
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
}
