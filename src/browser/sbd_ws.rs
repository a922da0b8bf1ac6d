//! Browser glue for the sbd client: drives one [`SbdClient`] over a `web_sys::WebSocket`
//! (wasm32 only). All protocol rules live in [`crate::net::sbd`]; this file only moves bytes,
//! events and timer wake-ups.
//!
//! - The socket uses `binaryType = "arraybuffer"`; each binary message is fed to the core
//!   (oversize ones are rejected before copying), a text message closes the connection.
//! - After every input (message, app send, close, timer) the core is *pumped*: its
//!   transmits go to `WebSocket.send`, its events to an unbounded futures channel, and a
//!   single timer ([`crate::browser::clock::sleep_ms`], the one timer binding) is (re)armed
//!   for [`SbdClient::poll_timeout`]; re-arming aborts the previous one (which clears it).
//! - The event channel is unbounded because a browser WebSocket cannot be paused; inbound
//!   volume is bounded by the server's rate limit on the senders.
//! - Single-threaded: the JS callbacks hold a `Weak` to the shared state and borrow it only
//!   while the core runs; nothing the pump calls dispatches JS events synchronously.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use futures::channel::mpsc;
use futures::future::{AbortHandle, Abortable};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

use crate::model::config::ConfigError;
use crate::model::time::Timestamp;
use crate::net::budget::{BudgetedReceiver, ByteBudget};
use crate::net::sbd::{
    CloseReason, GenerateError, MAX_MESSAGE_BYTES, ProtocolError, PubKey, SbdClient, SbdConfig,
    SbdEvent, SendError,
};

/// Most bytes of received forwards queued for the consumer of [`SbdEvents`] (8 MiB, 400 full
/// sbd messages). A WebSocket cannot be paused; a consumer that far behind means a peer floods
/// this tab, so the connection closes instead of growing the queue.
pub const MAX_QUEUED_RECEIVE_BYTES: usize = 8 << 20;

/// The receiving side of a connection's events, in order; [`SbdEvent::Closed`] is last,
/// then the stream ends. Taking a [`SbdEvent::Message`] gives its bytes back to the
/// connection's receive budget ([`MAX_QUEUED_RECEIVE_BYTES`]).
pub type SbdEvents = BudgetedReceiver<SbdEvent>;

/// Bytes a queued event took from the receive budget: a forward's payload, else nothing.
fn queued_bytes(ev: &SbdEvent) -> usize {
    match ev {
        SbdEvent::Message { payload, .. } => payload.len(),
        _ => 0,
    }
}

thread_local! {
    /// The `WebSocket` constructor given to `Peer.connect` (its `WebSocket` option), if any.
    static CONSTRUCTOR: RefCell<Option<js_sys::Function>> = const { RefCell::new(None) };
}

/// Makes `ctor` the `WebSocket` constructor of every later sbd connection of this wasm
/// instance (the last one given wins; connections already open keep theirs). For scopes
/// without a global `WebSocket`, e.g. Node 20, where the `ws` package's class does: it has the
/// WHATWG shape fennec uses (`binaryType`, `send`, `close`, `onmessage`/`onclose`/`onerror`).
pub fn set_websocket_constructor(ctor: js_sys::Function) {
    CONSTRUCTOR.with(|c| *c.borrow_mut() = Some(ctor));
}

/// The constructor [`set_websocket_constructor`] gave, else the global `WebSocket`.
pub fn websocket_constructor() -> Option<js_sys::Function> {
    CONSTRUCTOR.with(|c| c.borrow().clone()).or_else(|| {
        js_sys::Reflect::get(&js_sys::global(), &"WebSocket".into())
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
    })
}

/// `new WebSocket(url)` with [`websocket_constructor`]. Not `instanceof`-checked: an injected
/// class (the `ws` package) is not the platform's `WebSocket`, only shaped like it.
fn new_websocket(url: &str) -> Result<WebSocket, SbdWsError> {
    let ctor = websocket_constructor().ok_or_else(|| {
        SbdWsError::WebSocket(
            "no WebSocket in this scope: pass the `WebSocket` option to Peer.connect \
             (in Node 20, e.g. the `ws` package's class)"
                .into(),
        )
    })?;
    js_sys::Reflect::construct(&ctor, &js_sys::Array::of1(&url.into()))
        .map(JsCast::unchecked_into)
        .map_err(|e| SbdWsError::WebSocket(crate::browser::clock::describe_js(&e)))
}

/// Why [`SbdWs::connect`] failed.
#[derive(Debug, thiserror::Error)]
pub enum SbdWsError {
    /// No random source for the connection key.
    #[error("no random source for the sbd key: {0}")]
    Random(getrandom::Error),
    /// The config failed [`SbdConfig::validate`].
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `new WebSocket(url)` threw (e.g. a malformed URL; the text is the JS error), or there is
    /// no `WebSocket` constructor at all (Node 20 without the `WebSocket` option).
    #[error("cannot open websocket: {0}")]
    WebSocket(String),
}

/// One sbd connection in the browser: a fresh ed25519 key, a WebSocket to the server, the
/// [`SbdClient`] core between them. Dropping it closes the socket.
pub struct SbdWs {
    inner: Rc<RefCell<Inner>>,
    pub_key: PubKey,
    url: String,
}

struct Inner {
    core: SbdClient,
    ws: WebSocket,
    events: mpsc::UnboundedSender<SbdEvent>,
    /// Bytes of forwards queued in `events` and not yet taken.
    budget: ByteBudget,
    /// The budget ran out: the connection is closing; later forwards are not queued.
    overflowed: bool,
    /// The armed timer (abort to clear it) and the time it fires for.
    timer: Option<(AbortHandle, Timestamp)>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
    _on_error: Closure<dyn FnMut(web_sys::Event)>,
    /// Ourselves, for the timer task.
    me: Weak<RefCell<Inner>>,
    detached: bool,
}

impl SbdWs {
    /// Opens `ws[s]://…/<pubkey>` on the sbd server at `server_url` (`ws://host:port`) with a
    /// fresh key and returns at once; [`SbdEvent::Ready`] on the returned stream says the
    /// handshake completed. Sends before that are queued.
    ///
    /// # Errors
    /// [`SbdWsError::Config`] naming the bad field of `config`, [`SbdWsError::Random`]
    /// without a random source, [`SbdWsError::WebSocket`] if the browser refuses the URL. Later failures arrive as [`SbdEvent::Closed`].
    pub fn connect(server_url: &str, config: SbdConfig) -> Result<(Self, SbdEvents), SbdWsError> {
        let core =
            SbdClient::generate(config, crate::browser::clock::now()).map_err(|e| match e {
                GenerateError::Config(e) => SbdWsError::Config(e),
                GenerateError::Random(e) => SbdWsError::Random(e),
            })?;
        Self::open(server_url, core)
    }

    /// As [`Self::connect`] with a given key: a reconnect reuses the lost connection's key,
    /// so its URL (the peer URL) stays the same.
    ///
    /// # Errors
    /// As [`Self::connect`], without [`SbdWsError::Random`].
    pub fn connect_with_key(
        server_url: &str,
        config: SbdConfig,
        key: ed25519_dalek::SigningKey,
    ) -> Result<(Self, SbdEvents), SbdWsError> {
        Self::open(
            server_url,
            SbdClient::new(config, key, crate::browser::clock::now())?,
        )
    }

    fn open(server_url: &str, core: SbdClient) -> Result<(Self, SbdEvents), SbdWsError> {
        let pub_key = *core.pub_key();
        let url = core.url(server_url);
        let ws = new_websocket(&url)?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let (tx, rx) = mpsc::unbounded();
        let budget = ByteBudget::new(MAX_QUEUED_RECEIVE_BYTES);
        let events = BudgetedReceiver::new(rx, budget.clone(), queued_bytes);

        let inner = Rc::new_cyclic(|weak: &Weak<RefCell<Inner>>| {
            let w = weak.clone();
            let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
                with_core(&w, |core| {
                    match e.data().dyn_into::<js_sys::ArrayBuffer>() {
                        Ok(buf) => {
                            let len = buf.byte_length() as usize;
                            if len > MAX_MESSAGE_BYTES {
                                core.close(ProtocolError::Oversize { len }.into());
                            } else {
                                core.handle_message(js_sys::Uint8Array::new(&buf).to_vec());
                            }
                        }
                        Err(_) => core.close(ProtocolError::TextMessage.into()),
                    }
                })
            });
            let w = weak.clone();
            let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
                with_core(&w, |core| {
                    core.close(CloseReason::Transport(format!(
                        "websocket closed, code {} {:?}",
                        e.code(),
                        e.reason()
                    )))
                })
            });
            let w = weak.clone();
            let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
                with_core(&w, |core| {
                    core.close(CloseReason::Transport("websocket error".into()))
                })
            });
            ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
            ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
            ws.set_onerror(Some(on_error.as_ref().unchecked_ref()));
            RefCell::new(Inner {
                core,
                ws,
                events: tx,
                budget,
                overflowed: false,
                timer: None,
                _on_message: on_message,
                _on_close: on_close,
                _on_error: on_error,
                me: weak.clone(),
                detached: false,
            })
        });
        inner.borrow_mut().pump();
        Ok((
            SbdWs {
                inner,
                pub_key,
                url,
            },
            events,
        ))
    }

    /// This connection's public key (what peers see as `from`).
    pub fn pub_key(&self) -> PubKey {
        self.pub_key
    }

    /// The connect URL, `<server_url>/<b64url pubkey>`: also this client's peer URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Queue `payload` for `to` and send what pacing allows now (see [`SbdClient::send`]).
    ///
    /// # Errors
    /// As [`SbdClient::send`]: too large, command-like key, [`SendError::Full`]
    /// (back-pressure: wait for [`SbdEvent::Writable`]) or closed.
    pub fn send(&self, to: &PubKey, payload: &[u8]) -> Result<(), SendError> {
        let mut inner = self.inner.borrow_mut();
        inner.core.send(to, payload)?;
        inner.pump();
        Ok(())
    }

    /// Bytes waiting in the send queue.
    pub fn queued_bytes(&self) -> usize {
        self.inner.borrow().core.queued_bytes()
    }

    /// Close the connection ([`CloseReason::Local`]); the event stream ends with `Closed`.
    pub fn close(&self) {
        let mut inner = self.inner.borrow_mut();
        inner.core.close(CloseReason::Local);
        inner.pump();
    }
}

impl Drop for SbdWs {
    fn drop(&mut self) {
        self.close();
    }
}

/// Run `f` on the core behind `w` (if the connection still exists), then pump.
fn with_core(w: &Weak<RefCell<Inner>>, f: impl FnOnce(&mut SbdClient)) {
    if let Some(rc) = w.upgrade() {
        let mut inner = rc.borrow_mut();
        f(&mut inner.core);
        inner.pump();
    }
}

impl Inner {
    /// The consumer is [`MAX_QUEUED_RECEIVE_BYTES`] behind: close the connection (its
    /// `Closed` event follows) rather than queue without bound or drop from the middle.
    fn overflow(&mut self) {
        if !self.overflowed {
            self.overflowed = true;
            self.core.close(CloseReason::Transport(format!(
                "receive queue over {} bytes: the app is not keeping up",
                self.budget.cap()
            )));
        }
    }

    /// Move everything the core has for us: transmits to the socket, events to the channel,
    /// and arm the timer for its next wake-up.
    fn pump(&mut self) {
        if self.detached {
            return;
        }
        let now = crate::browser::clock::now();
        self.core.handle_timeout(now);
        while let Some(msg) = self.core.poll_transmit(now) {
            if let Err(e) = self.ws.send_with_u8_array(&msg) {
                self.core
                    .close(CloseReason::Transport(format!("websocket send: {e:?}")));
                break;
            }
        }
        while let Some(ev) = self.core.poll_event() {
            if let SbdEvent::Message { payload, .. } = &ev
                && (self.overflowed || !self.budget.try_take(payload.len()))
            {
                self.overflow();
                continue;
            }
            let _ = self.events.unbounded_send(ev);
        }
        if self.core.is_closed() {
            self.detach();
            return;
        }
        let next = self.core.poll_timeout();
        if self.timer.as_ref().map(|t| t.1) != next {
            if let Some((handle, _)) = self.timer.take() {
                handle.abort();
            }
            if let Some(at) = next {
                let (handle, registration) = AbortHandle::new_pair();
                let w = self.me.clone();
                let fire = async move {
                    crate::browser::clock::sleep_ms(crate::browser::clock::ms_until(at)).await;
                    if let Some(rc) = w.upgrade() {
                        rc.borrow_mut().timer = None;
                    }
                    with_core(&w, |_| {});
                };
                wasm_bindgen_futures::spawn_local(async move {
                    // Aborted: a newer timer replaced this one.
                    let _ = Abortable::new(fire, registration).await;
                });
                self.timer = Some((handle, at));
            }
        }
    }

    /// Done: unhook the JS callbacks, stop the timer, close the socket, end the stream.
    fn detach(&mut self) {
        if self.detached {
            return;
        }
        self.detached = true;
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        self.ws.set_onerror(None);
        if let Some((handle, _)) = self.timer.take() {
            handle.abort();
        }
        let _ = self.ws.close();
        self.events.close_channel();
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.detach();
    }
}
