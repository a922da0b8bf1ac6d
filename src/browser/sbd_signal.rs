//! The sbd relay as a [`Signal`] (wasm32): the WebRTC transport's signalling and relayed data
//! travel as sbd forward messages.
//!
//! - Our peer URL is the sbd connect URL, `ws[s]://host:port/<b64url connection key>`; a
//!   peer URL on the same server names the peer's connection key. URLs on another server
//!   are [`SignalError::Unreachable`] (one sbd connection reaches one server).
//! - One signal message is one forward, at most [`MAX_PAYLOAD_BYTES`] (19 968) bytes.
//! - Back-pressure: when the sbd send queue is full ([`SendError::Full`]) a send waits for
//!   [`SbdEvent::Writable`] and tries again; nothing is dropped. The client core paces what
//!   it sends by the server's `lbrt` limit.
//! - The server authenticates the sender of every forward (its key signed the server's
//!   nonce), which is what lets the transport trust the sender URL for admission.
//! - The receive stream ends when the sbd connection closes.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use bytes::Bytes;
use futures::channel::mpsc;
use futures::future::LocalBoxFuture;
use futures::{FutureExt, SinkExt, StreamExt};
use wasm_bindgen_futures::spawn_local;

use super::sbd_ws::{SbdWs, SbdWsError};
use crate::api::signal::{Signal, SignalError, SignalRx};
use crate::model::url::Url;
use crate::net::sbd::{CloseReason, MAX_PAYLOAD_BYTES, PubKey, SbdConfig, SbdEvent, SendError};

/// Why [`SbdSignal::connect`] failed.
#[derive(Debug, thiserror::Error)]
pub enum SbdSignalError {
    /// The server URL is not a canonical `ws://host:port` / `wss://host:port` URL.
    #[error("bad sbd server url {0:?}")]
    BadUrl(String),
    /// The WebSocket could not be opened.
    #[error(transparent)]
    Ws(#[from] SbdWsError),
    /// The connection closed before the server accepted us (`srdy`).
    #[error("sbd connection closed before it was ready: {0}")]
    Closed(CloseReason),
}

/// Wakes tasks waiting for the sbd send queue to drain.
#[derive(Default)]
struct Writable {
    generation: Cell<u64>,
    closed: Cell<bool>,
    /// Why the connection closed, once it did.
    reason: RefCell<Option<CloseReason>>,
    wakers: RefCell<Vec<Waker>>,
}

impl Writable {
    fn notify(&self) {
        self.generation.set(self.generation.get() + 1);
        for w in self.wakers.borrow_mut().drain(..) {
            w.wake();
        }
    }
}

/// One sbd connection used as the transport's signal path. Dropping it (and every clone of
/// the `Rc` the transport holds) closes the connection.
pub struct SbdSignal {
    ws: Rc<SbdWs>,
    url: Url,
    server: Url,
    writable: Rc<Writable>,
}

impl SbdSignal {
    /// Connects to the sbd server at `server_url` (`ws://host:port`) with connection key
    /// `key` (the same key on a reconnect keeps the peer URL) and waits until the server
    /// accepted it. Returns the signal and its receive stream.
    ///
    /// # Errors
    /// [`SbdSignalError`]: a bad URL, an invalid `config` (naming the field), a WebSocket the
    /// browser refuses, or a connection that
    /// closed before `srdy` (server unreachable, handshake timeout).
    pub async fn connect(
        server_url: &str,
        config: SbdConfig,
        key: ed25519_dalek::SigningKey,
    ) -> Result<(SbdSignal, SignalRx), SbdSignalError> {
        let server =
            Url::parse(server_url).map_err(|_| SbdSignalError::BadUrl(server_url.into()))?;
        if server.is_peer() || !matches!(server.scheme(), "ws" | "wss") {
            return Err(SbdSignalError::BadUrl(server_url.into()));
        }
        let (ws, mut events) = SbdWs::connect_with_key(server.as_str(), config, key)?;
        let url = Url::parse(ws.url()).map_err(|_| SbdSignalError::BadUrl(ws.url().into()))?;
        loop {
            match events.next().await {
                Some(SbdEvent::Ready) => break,
                Some(SbdEvent::Closed { reason }) => return Err(SbdSignalError::Closed(reason)),
                Some(_) => {}
                None => {
                    return Err(SbdSignalError::Closed(CloseReason::Transport(
                        "event stream ended".into(),
                    )));
                }
            }
        }
        let writable = Rc::new(Writable::default());
        let (tx, rx) = mpsc::channel(FORWARD_QUEUE);
        spawn_local(pump(events, server.clone(), tx, writable.clone()));
        Ok((
            SbdSignal {
                ws: Rc::new(ws),
                url,
                server,
                writable,
            },
            rx.boxed_local(),
        ))
    }

    /// The sbd server URL (`ws://host:port`).
    pub fn server_url(&self) -> &Url {
        &self.server
    }

    /// Our sbd connection key.
    pub fn pub_key(&self) -> PubKey {
        self.ws.pub_key()
    }

    /// Why the connection closed (after its receive stream ended), for humans.
    pub fn close_reason(&self) -> Option<String> {
        self.writable
            .reason
            .borrow()
            .as_ref()
            .map(|r| r.to_string())
    }
}

/// Forwards handed to the receive stream ahead of its consumer. The pump waits beyond that,
/// so a slow consumer holds messages in the sbd connection's byte-bounded queue
/// ([`super::sbd_ws::MAX_QUEUED_RECEIVE_BYTES`]), which closes the connection when full.
const FORWARD_QUEUE: usize = 32;

/// Moves sbd events to the receive stream and the writable notifier until the connection
/// closes (or the receive stream is dropped).
async fn pump(
    mut events: super::sbd_ws::SbdEvents,
    server: Url,
    mut tx: mpsc::Sender<(Url, Bytes)>,
    writable: Rc<Writable>,
) {
    while let Some(ev) = events.next().await {
        match ev {
            SbdEvent::Message { from, payload } => {
                if let Ok(from) = server.with_peer_id(&from.to_b64url())
                    && tx.send((from, payload)).await.is_err()
                {
                    break; // nobody listens any more
                }
            }
            SbdEvent::Writable => writable.notify(),
            SbdEvent::Ready => {}
            SbdEvent::Closed { reason } => {
                *writable.reason.borrow_mut() = Some(reason);
                break;
            }
        }
    }
    writable.closed.set(true);
    writable.notify();
    tx.close_channel();
}

impl Signal for SbdSignal {
    fn local_url(&self) -> &Url {
        &self.url
    }

    fn max_message_bytes(&self) -> usize {
        MAX_PAYLOAD_BYTES
    }

    fn send(&self, to: &Url, msg: Bytes) -> LocalBoxFuture<'static, Result<(), SignalError>> {
        let key = (to.to_server_url() == self.server)
            .then(|| to.peer_id().and_then(|id| PubKey::from_b64url(id).ok()))
            .flatten();
        let (ws, writable, to) = (self.ws.clone(), self.writable.clone(), to.clone());
        async move {
            let key = key.ok_or_else(|| SignalError::Unreachable(to.clone()))?;
            loop {
                let seen = writable.generation.get();
                match ws.send(&key, &msg) {
                    Ok(()) => return Ok(()),
                    Err(SendError::Full { .. }) => {
                        poll_fn(|cx| {
                            if writable.generation.get() != seen || writable.closed.get() {
                                Poll::Ready(())
                            } else {
                                writable.wakers.borrow_mut().push(cx.waker().clone());
                                Poll::Pending
                            }
                        })
                        .await;
                    }
                    Err(SendError::TooLarge { len, max }) => {
                        return Err(SignalError::TooLarge { len, max });
                    }
                    Err(SendError::CommandLikeDestination) => {
                        return Err(SignalError::Unreachable(to));
                    }
                    Err(SendError::Closed) => return Err(SignalError::Closed),
                }
            }
        }
        .boxed_local()
    }
}
