//! A [`Signal`] that survives the loss of its sbd connection (wasm32): when the connection
//! closes it reconnects on its own, with the same connection key (so the same peer URL), on
//! the back-off of [`crate::net::reconnect`], and reports what happens as [`LinkEvent`]s.
//!
//! - The receive stream handed to the transport spans every connection: it ends only when
//!   [`ReconnectingSignal::close`] was called (or the signal was dropped).
//! - While no connection is up, [`Signal::send`] fails at once with [`SignalError::Closed`]
//!   (the contract: fail, never drop silently); the space marks the peer unresponsive and
//!   the browser glue announces the op again once the link is back.
//! - `navigator.onLine` (where there is a `navigator`) decides whether the state is
//!   `offline` at once rather than after [`crate::net::reconnect::ReconnectConfig::offline_after`]
//!   failures.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use bytes::Bytes;
use futures::channel::mpsc;
use futures::future::LocalBoxFuture;
use futures::{FutureExt, SinkExt, StreamExt};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;

use super::sbd_signal::{SbdSignal, SbdSignalError};
use crate::api::signal::{Signal, SignalError, SignalRx};
use crate::model::url::Url;
use crate::net::reconnect::{LinkState, Reconnect, ReconnectConfig};
use crate::net::sbd::{MAX_PAYLOAD_BYTES, SbdClient, SbdConfig};

/// What the link reports to the space (in order).
#[derive(Debug, Clone, PartialEq)]
pub enum LinkEvent {
    /// The link's state changed, or a retry was planned.
    Status(LinkStatus),
    /// The sbd connection was lost (`reason`), or the link turned offline because retries
    /// keep failing: the JS `error` event of kind `"signal"`.
    Failed(String),
}

/// The state of the link and the detail behind it (the JS `StatusEvent`).
#[derive(Debug, Clone, PartialEq)]
pub struct LinkStatus {
    /// Connected, reconnecting or offline.
    pub state: LinkState,
    /// Failed attempts in a row (0 when connected).
    pub attempt: u32,
    /// Milliseconds until the next attempt, while not connected.
    pub next_retry_ms: Option<u64>,
    /// Why the link is not connected (the close reason or the last attempt's error).
    pub reason: Option<String>,
}

impl LinkStatus {
    fn connected() -> Self {
        LinkStatus {
            state: LinkState::Connected,
            attempt: 0,
            next_retry_ms: None,
            reason: None,
        }
    }
}

/// Events of one link; the stream ends when the link is closed.
pub type LinkEvents = mpsc::UnboundedReceiver<LinkEvent>;

/// Forwards queued for the transport ahead of its consumer (back-pressure beyond that is the
/// sbd connection's own bounded queue).
const FORWARD_QUEUE: usize = 32;

/// See the [module docs](self).
pub struct ReconnectingSignal {
    link: Rc<Link>,
    url: Url,
}

struct Link {
    server_url: String,
    config: SbdConfig,
    key: ed25519_dalek::SigningKey,
    current: RefCell<Option<Rc<SbdSignal>>>,
    policy: RefCell<Reconnect>,
    status: RefCell<LinkStatus>,
    events: mpsc::UnboundedSender<LinkEvent>,
    closed: Cell<bool>,
}

impl ReconnectingSignal {
    /// Connects to the sbd server at `server_url` (`ws://host:port`) with a fresh key and
    /// waits for the first connection; later losses are retried on `policy`'s back-off
    /// (`seed` feeds its jitter). Returns the signal, its receive stream and its events.
    ///
    /// # Errors
    /// The first connection's [`SbdSignalError`] (no retry: the caller decides), or
    /// [`SbdSignalError::Ws`] without a random source for the key.
    pub async fn connect(
        server_url: &str,
        config: SbdConfig,
        policy: ReconnectConfig,
        seed: u64,
    ) -> Result<(Self, SignalRx, LinkEvents), SbdSignalError> {
        let policy = Reconnect::new(policy, seed)
            .map_err(|e| SbdSignalError::Ws(super::sbd_ws::SbdWsError::Config(e)))?;
        let key = SbdClient::generate_key()
            .map_err(|e| SbdSignalError::Ws(super::sbd_ws::SbdWsError::Random(e)))?;
        let (first, rx) = SbdSignal::connect(server_url, config.clone(), key.clone()).await?;
        let url = first.local_url().clone();
        let (events, events_rx) = mpsc::unbounded();
        let link = Rc::new(Link {
            server_url: server_url.into(),
            config,
            key,
            current: RefCell::new(Some(Rc::new(first))),
            policy: RefCell::new(policy),
            status: RefCell::new(LinkStatus::connected()),
            events,
            closed: Cell::new(false),
        });
        let (tx, merged) = mpsc::channel(FORWARD_QUEUE);
        spawn_local(supervise(link.clone(), rx, tx));
        Ok((
            ReconnectingSignal { link, url },
            merged.boxed_local(),
            events_rx,
        ))
    }

    /// The link's current status.
    pub fn status(&self) -> LinkStatus {
        self.link.status.borrow().clone()
    }

    /// Closes the connection and stops reconnecting; the receive stream and the events end.
    pub fn close(&self) {
        self.link.closed.set(true);
        self.link.current.borrow_mut().take();
        self.link.events.close_channel();
    }
}

impl Drop for ReconnectingSignal {
    fn drop(&mut self) {
        self.close();
    }
}

impl Link {
    fn report(&self, status: LinkStatus) {
        *self.status.borrow_mut() = status.clone();
        let _ = self.events.unbounded_send(LinkEvent::Status(status));
    }

    /// Plans the next attempt after a loss or failure (`reason`) and reports it; returns the
    /// delay in ms. A `Failed` event goes out for the loss itself (`first`) and when the
    /// link turns offline.
    fn failed(&self, reason: String, first: bool) -> u64 {
        let (retry, state, was) = {
            let mut p = self.policy.borrow_mut();
            let was = p.state();
            p.set_browser_online(browser_online());
            let retry = p.failed(crate::browser::clock::now());
            (retry, p.state(), was)
        };
        let ms = retry.delay.as_millis() as u64;
        if first || (state == LinkState::Offline && was != LinkState::Offline) {
            let what = if first {
                format!("sbd connection to {} lost: {reason}", self.server_url)
            } else {
                format!(
                    "cannot reach the sbd server {} after {} attempts: {reason}",
                    self.server_url, retry.attempt
                )
            };
            let _ = self.events.unbounded_send(LinkEvent::Failed(what));
        }
        self.report(LinkStatus {
            state,
            attempt: retry.attempt,
            next_retry_ms: Some(ms),
            reason: Some(reason),
        });
        ms
    }
}

/// Feeds the transport from each connection in turn; when one ends, reconnects with back-off
/// until it succeeds or the link is closed.
async fn supervise(link: Rc<Link>, mut rx: SignalRx, mut tx: mpsc::Sender<(Url, Bytes)>) {
    loop {
        while let Some(m) = rx.next().await {
            if tx.send(m).await.is_err() {
                return; // the transport is gone
            }
        }
        if link.closed.get() {
            return;
        }
        let lost = link.current.borrow_mut().take();
        let reason = lost
            .and_then(|s| s.close_reason())
            .unwrap_or_else(|| "connection closed".into());
        let mut delay = link.failed(reason, true);
        rx = loop {
            crate::browser::clock::sleep_ms(delay as i64).await;
            if link.closed.get() {
                return;
            }
            match SbdSignal::connect(&link.server_url, link.config.clone(), link.key.clone()).await
            {
                Ok((signal, rx)) if !link.closed.get() => {
                    *link.current.borrow_mut() = Some(Rc::new(signal));
                    link.policy.borrow_mut().connected();
                    link.report(LinkStatus::connected());
                    break rx;
                }
                Ok(_) => return,
                Err(e) => delay = link.failed(e.to_string(), false),
            }
        };
    }
}

/// `navigator.onLine`, or true where there is no navigator to ask.
fn browser_online() -> bool {
    let global = js_sys::global();
    if let Some(w) = global.dyn_ref::<web_sys::Window>() {
        return w.navigator().on_line();
    }
    if let Some(w) = global.dyn_ref::<web_sys::WorkerGlobalScope>() {
        return w.navigator().on_line();
    }
    true
}

impl Signal for ReconnectingSignal {
    fn local_url(&self) -> &Url {
        &self.url
    }

    fn max_message_bytes(&self) -> usize {
        MAX_PAYLOAD_BYTES
    }

    fn send(&self, to: &Url, msg: Bytes) -> LocalBoxFuture<'static, Result<(), SignalError>> {
        let current = self.link.current.borrow().clone();
        match current {
            Some(s) => s.send(to, msg),
            None => async { Err(SignalError::Closed) }.boxed_local(),
        }
    }
}
