//! The browser transport: WebRTC data channels between peers, signalled (and relayed when
//! WebRTC cannot connect) through a [`Signal`]. wasm32 only.
//!
//! All rules live in the sans-IO modules: [`crate::net::conn`] decides which connections
//! exist and over which path (glare tie-break by peer URL, LRU, idle, the peer connection
//! budget, relay fallback) and runs the handshake (preflight order, readiness, decoding each
//! inbound message once), [`crate::net::frame`] frames signalling and chunks messages,
//! [`crate::net::admission`] encodes and verifies preflights. This file creates the
//! `RTCPeerConnection`s and data channels, moves bytes, executes the manager's actions and
//! sleeps until its next deadline ([`crate::browser::clock`], the one timer binding). It
//! admits nothing: the one admission rule is the space's
//! ([`crate::core::peer_store::PeerStore::admits`]).
//!
//! - One `RTCPeerConnection` per connection, with two data channels, both binary
//!   (`arraybuffer`) and pre-negotiated (`negotiated: true`, so no `datachannel` event is
//!   involved): `"fennec"` (stream id 0), ordered and reliable, carries every message
//!   chunked; `"fennec-datagram"` (stream id 1), unordered with no retransmissions
//!   (`maxRetransmits: 0`), carries membership (SWIM) packets whole, one per message
//!   ([`WebRtcTransport::send_datagram`], [`ConnManager::handle_datagram`]) so that probes
//!   never wait behind bulk fetch traffic in the reliable channel's buffer and SCTP's
//!   in-order delivery (issue 11). ICE candidates trickle through the signal path after the
//!   offer or answer they belong to.
//! - Membership messages received on either channel or the relay jump the delivery queue
//!   ([`WebRtcTransport::membership_events`]): a probe must not wait behind thousands of
//!   fetch responses the space has yet to handle.
//! - Sending waits while `bufferedAmount` is above [`NetConfig::send_high_water_bytes`] and
//!   resumes on `bufferedamountlow` (threshold [`NetConfig::send_low_water_bytes`]): memory
//!   is bounded by the high-water mark plus one chunk per connection. Relayed chunks wait
//!   for the signal path's own back-pressure. Nothing is dropped silently: a send either
//!   completes or returns an error.
//! - One message is sent at a time per connection (a fair async lock), so chunks never
//!   interleave.
//! - Events from JavaScript (`open`, `message`, `close`, ICE candidates, connection state,
//!   `pagehide`, the timer) are queued to a single driver task; the only shared state they
//!   touch directly is a waker. No Rust state is borrowed while JavaScript runs, so no
//!   callback can re-enter it.
//! - Every closure is owned by its connection and unhooked (`on* = null`) before
//!   `RTCPeerConnection.close()` when the connection is dropped (no `Closure::forget`).
//! - `pagehide` closes every connection cleanly, at once inside the event (the page may be
//!   gone before a queued task runs): the DISCONNECT goes out on each open data channel
//!   before it closes. The reason is [`PAGE_CLOSED`] when the page is being discarded
//!   (`persisted` false), so peers may take it as a departure ([`closed_by_departed_peer`]),
//!   else [`PAGE_HIDDEN`] (back-forward cache: the page may come back).
//!
//! A data channel cannot be paused from the receiving side, so the queues it fills are bounded
//! in bytes instead ([`ByteBudget`]): data-channel messages waiting for this transport's task
//! ([`MAX_QUEUED_RECEIVE_BYTES`]) and whole messages waiting for the application in
//! [`NetEvents`] ([`MAX_QUEUED_DELIVERY_BYTES`]). A connection whose messages do not fit is
//! closed with the reason; nothing is dropped from the middle of a stream. Each message is
//! bounded by [`NetConfig::max_message_bytes`]. Each connection's queue of remote signal frames for its
//! WebRTC task is bounded ([`RTC_CMDS_CAPACITY`]): a peer that floods it is counted
//! ([`NetStats::rtc_cmds_overflow`]) and its connection closed.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::{Rc, Weak};
use std::task::{Poll, Waker};

use bytes::Bytes;
use futures::channel::{mpsc, oneshot};
use futures::{FutureExt, StreamExt, stream};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, spawn_local};
use web_sys::{
    MessageEvent, RtcConfiguration, RtcDataChannel, RtcDataChannelInit, RtcDataChannelState,
    RtcDataChannelType, RtcIceCandidateInit, RtcIceServer, RtcPeerConnection,
    RtcPeerConnectionIceEvent, RtcPeerConnectionState, RtcSdpType, RtcSessionDescriptionInit,
};

use crate::api::signal::{Signal, SignalError, SignalRx};
use crate::browser::clock::describe_js;
use crate::hash::HashMap;
use crate::model::agent::AgentInfoSigned;
use crate::model::config::ConfigError;
use crate::model::time::Timestamp;
use crate::model::url::Url;
use crate::net::admission::encode_preflight;
use crate::net::budget::{BudgetedReceiver, ByteBudget};
use crate::net::conn::{
    Action, ConnError, ConnInfo, ConnManager, ConnStats, MAX_DATAGRAM_BYTES, NetConfig, Path,
    Phase, Role,
};
use crate::net::frame::{
    Candidate, ConnId, RELAY_OVERHEAD_BYTES, Reassembler, SignalFrame, chunks,
};
use crate::wire::WireMessage;

/// Most remote signal frames (offer, answer, ICE candidates) queued for one connection's
/// WebRTC task while it awaits the browser. An honest peer sends one description and a
/// handful of candidates; beyond this the peer is flooding: the frame is dropped, counted
/// ([`NetStats::rtc_cmds_overflow`]) and the connection closed.
pub const RTC_CMDS_CAPACITY: usize = 64;

/// Least time between two [`NetEvent::Receiving`] of one connection, µs (250 ms: several
/// per suspicion timeout of 1.6 s, few next to the chunks of a fast transfer).
pub const RECEIVING_EVERY_US: i64 = 250_000;

/// Most bytes of data-channel messages queued for this transport's task (16 MiB, four
/// largest frames). An `RTCDataChannel` cannot be paused from the receiving side; a peer that
/// gets this far ahead has its connection closed instead of growing the queue.
pub const MAX_QUEUED_RECEIVE_BYTES: usize = 16 << 20;

/// Bytes of a data-channel message (`ArrayBuffer`); a text message counts as 0 (it is a
/// protocol violation, handled when it is taken from the queue).
fn message_len(data: &JsValue) -> usize {
    data.dyn_ref::<js_sys::ArrayBuffer>()
        .map_or(0, |b| b.byte_length() as usize)
}

/// The bytes of a binary data-channel message (an `ArrayBuffer`); `None` for a text one.
fn binary(data: JsValue) -> Option<Bytes> {
    let buf = data.dyn_into::<js_sys::ArrayBuffer>().ok()?;
    Some(Bytes::from(js_sys::Uint8Array::new(&buf).to_vec()))
}

/// The label of fennec's data channel.
pub const DATA_CHANNEL_LABEL: &str = "fennec";

/// The stream id of fennec's pre-negotiated data channel.
pub const DATA_CHANNEL_ID: u16 = 0;

/// The label of fennec's datagram channel (unordered, unreliable: membership packets).
pub const DATAGRAM_CHANNEL_LABEL: &str = "fennec-datagram";

/// The stream id of fennec's pre-negotiated datagram channel.
pub const DATAGRAM_CHANNEL_ID: u16 = 1;

/// Most bytes a datagram channel may hold unsent: 64 KiB, about fifty SWIM packets. Beyond
/// it the path is congested and a datagram is dropped (counted in
/// [`NetStats::datagrams_dropped`]) rather than queued: a probe that waits is as good as lost
/// to SWIM, and SWIM retries.
pub const DATAGRAM_HIGH_WATER_BYTES: u32 = 64 * 1024;

/// Most `RTCPeerConnection`s all transports of one page create together: 450, below
/// Chromium's 500 per page lifetime (closed ones count; chromium 41378764,
/// `libp2p/js-libp2p#2591`), leaving room for the application's own. Beyond it every new
/// connection is relayed.
pub const PAGE_PEER_CONNECTION_LIMIT: u32 = 450;

thread_local! {
    /// `RTCPeerConnection`s created in this page (this wasm instance) so far.
    static PAGE_PEER_CONNECTIONS: Cell<u32> = const { Cell::new(0) };
}

/// `RTCPeerConnection`s created by all fennec transports of this page so far.
pub fn page_peer_connections() -> u32 {
    PAGE_PEER_CONNECTIONS.with(Cell::get)
}

fn page_budget_left() -> u32 {
    PAGE_PEER_CONNECTION_LIMIT.saturating_sub(page_peer_connections())
}

/// What the transport reports, in order per peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetEvent {
    /// Both preflights were exchanged with `peer`; messages flow.
    Connected {
        /// The peer.
        peer: Url,
        /// How its messages travel.
        path: Path,
        /// Its agent infos that verified and name its URL (from its preflight).
        agents: Vec<AgentInfoSigned>,
    },
    /// A NOTIFY or module message from `peer`, decoded once (by
    /// [`ConnManager::handle_message`]) after its preflight. Not yet admitted: the space
    /// applies the admission rule.
    Message {
        /// The sender.
        peer: Url,
        /// The decoded message; its byte fields are slices of the received frame.
        msg: WireMessage,
        /// The size of the frame as received, bytes.
        len: usize,
    },
    /// A chunk from `peer` that completes no message: it is sending (a long message on a
    /// slow or congested connection). At most one per connection per
    /// [`RECEIVING_EVERY_US`], and only on a connection that reported
    /// [`NetEvent::Connected`].
    Receiving {
        /// The sender.
        peer: Url,
    },
    /// A connection that had reported [`NetEvent::Connected`] is gone.
    Disconnected {
        /// The peer.
        peer: Url,
        /// Why (ours, or the peer's prefixed with "closed by peer").
        reason: String,
    },
}

/// Most bytes of whole messages queued for the application in [`NetEvents`] (32 MiB, eight
/// largest frames): beyond that the application is not keeping up, and the connection that
/// delivered the message that does not fit is closed.
pub const MAX_QUEUED_DELIVERY_BYTES: usize = 32 << 20;

/// The receiving end of a transport's events, in order. Taking a [`NetEvent::Message`] gives
/// its bytes back to the delivery budget ([`MAX_QUEUED_DELIVERY_BYTES`]).
pub type NetEvents = BudgetedReceiver<NetEvent>;

/// Bytes a queued event took from the delivery budget: a message's size, else nothing.
fn delivered_bytes(ev: &NetEvent) -> usize {
    match ev {
        NetEvent::Message { len, .. } => *len,
        _ => 0,
    }
}

/// Why a send or connect failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// The peer URL is not usable ([`ConnError`]).
    #[error(transparent)]
    Conn(#[from] ConnError),
    /// The message is larger than [`NetConfig::max_message_bytes`].
    #[error("message of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Bytes offered.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The connection closed (before or while sending); the reason says why.
    #[error("connection to {peer} closed: {reason}")]
    Closed {
        /// The peer.
        peer: Url,
        /// Why.
        reason: String,
    },
    /// The transport was shut down.
    #[error("transport closed")]
    TransportClosed,
}

/// Counters of the transport; they only grow. Received, dropped and protocol-violation
/// counts are the connection manager's ([`ConnStats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetStats {
    /// The connection manager's counters.
    pub conn: ConnStats,
    /// Messages (whole, reassembled) sent.
    pub messages_sent: u64,
    /// Signal messages that did not decode, ignored.
    pub malformed_signals: u64,
    /// Remote signal frames dropped because the connection's queue was full
    /// ([`RTC_CMDS_CAPACITY`]); each closed its connection.
    pub rtc_cmds_overflow: u64,
    /// Datagrams sent on a datagram channel ([`WebRtcTransport::send_datagram`]).
    pub datagrams_sent: u64,
    /// Datagrams dropped by this side: sent while the datagram channel held more than
    /// [`DATAGRAM_HIGH_WATER_BYTES`], or received while the receive queue was over
    /// [`MAX_QUEUED_RECEIVE_BYTES`]. (Early arrivals: [`ConnStats::datagrams_early`].)
    pub datagrams_dropped: u64,
}

/// A fennec peer's connections to other peers over WebRTC, with the relay as fallback.
/// Cheap to clone (all clones are the same transport); it shuts down when the last clone is
/// dropped.
#[derive(Clone)]
pub struct WebRtcTransport {
    shared: Rc<Shared>,
}

struct Shared {
    local: Url,
    config: NetConfig,
    signal: Rc<dyn Signal>,
    events: mpsc::UnboundedSender<NetEvent>,
    /// Bytes of messages queued in `events` and not yet taken.
    delivering: ByteBudget,
    /// Where membership messages go instead of `events`, once
    /// [`WebRtcTransport::membership_events`] was called.
    membership: RefCell<Option<mpsc::UnboundedSender<NetEvent>>>,
    inbox: mpsc::UnboundedSender<Ev>,
    /// Bytes of data-channel messages queued in `inbox` and not yet handled.
    received: ByteBudget,
    state: RefCell<State>,
    on_pagehide: Option<Closure<dyn FnMut(web_sys::Event)>>,
}

struct State {
    mgr: ConnManager,
    conns: HashMap<Url, Rc<Conn>>,
    preflight: Bytes,
    stats: NetStats,
    /// The deadline the driver task sleeps until (`None`: no deadline).
    wake_at: Option<Timestamp>,
    closed: bool,
}

pub use crate::net::conn::PAGE_CLOSED;

/// The DISCONNECT reason of connections closed because the page went into the back-forward
/// cache (`pagehide` with `persisted` true): it may come back.
pub const PAGE_HIDDEN: &str = "page hidden";

/// Whether a [`NetEvent::Disconnected`] reason says the peer's page closed ([`PAGE_CLOSED`],
/// as the connection manager reports a peer's close: `"closed by peer: <reason>"`).
pub fn closed_by_departed_peer(reason: &str) -> bool {
    reason.strip_prefix("closed by peer: ") == Some(PAGE_CLOSED)
}

/// Work for the driver task, queued by JavaScript callbacks and the signal stream.
enum Ev {
    Signal(Url, Bytes),
    SignalEnded,
    /// The manager's deadline passed.
    Timer,
    /// The manager's next deadline moved earlier: the driver re-computes its sleep.
    Rearm,
    PageHide(&'static str),
    DcOpen(Url, ConnId),
    DcMessage(Url, ConnId, JsValue),
    /// A message on the datagram channel.
    Datagram(Url, ConnId, JsValue),
    /// A datagram dropped on arrival: the receive queue was over its budget.
    DatagramOverBudget,
    DcClosed(Url, ConnId, &'static str),
    /// The data channel's `error` event, with the browser's description.
    DcError(Url, ConnId, String),
    RtcFailed(Url, ConnId, String),
    LocalCandidate(Url, ConnId, Candidate),
    /// Our offer or answer is ready to go out.
    LocalDescription(Url, ConnId, SignalFrame),
    /// Our preflight was handed to the path.
    PreflightSent(Url, ConnId),
    SignalSendFailed(Url, ConnId, SignalError),
    Shutdown,
}

/// What waits on a connection becoming ready to carry app messages.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Status {
    Pending,
    Ready,
    Closed(String),
}

/// Commands for a connection's WebRTC task, handled strictly in order.
enum RtcCmd {
    MakeOffer,
    Remote(SignalFrame),
}

/// One outgoing signal message; `ack` (if any) learns when the signal path took it.
type Outgoing = (Bytes, Option<oneshot::Sender<Result<(), SignalError>>>);

struct Conn {
    peer: Url,
    id: ConnId,
    path: Cell<Path>,
    rtc: RefCell<Option<Rtc>>,
    status: RefCell<Status>,
    status_wakers: RefCell<Vec<Waker>>,
    /// Woken by `bufferedamountlow` (and on close).
    low_waker: Rc<RefCell<Option<Waker>>>,
    send_lock: futures::lock::Mutex<()>,
    reassembler: RefCell<Reassembler>,
    /// When a chunk may next be reported as [`NetEvent::Receiving`].
    next_receiving: Cell<Timestamp>,
    outbox: mpsc::UnboundedSender<Outgoing>,
    /// Bounded ([`RTC_CMDS_CAPACITY`]): fed by remote signal frames.
    rtc_cmds: RefCell<mpsc::Sender<RtcCmd>>,
}

/// A peer connection, its data channel and the closures they call. Dropping it unhooks
/// the closures and closes both.
struct Rtc {
    pc: RtcPeerConnection,
    dc: RtcDataChannel,
    /// The datagram channel ([`DATAGRAM_CHANNEL_LABEL`]).
    dgram: RtcDataChannel,
    _closures: Vec<Closure<dyn FnMut(JsValue)>>,
}

/// The data-channel message telling the peer why we close: one chunk holding a K2
/// DISCONNECT with `reason` (Kitsune2's in-band close reason); `None` for a reason too long
/// for one chunk (the relayed close notice still carries it).
fn farewell(config: &NetConfig, reason: &str) -> Option<Bytes> {
    let frame = crate::wire::encode_disconnect(reason);
    let mut pieces = chunks(&frame, config.chunk_bytes, config.max_message_bytes).ok()?;
    let first = pieces.next();
    if pieces.next().is_some() {
        return None;
    }
    first
}

/// How long a closing connection waits for its data channel to finish closing (the peer
/// acknowledged the stream reset) before it closes the peer connection anyway.
const CLOSE_GRACE_MS: i64 = 2_000;

impl Rtc {
    /// Closes without aborting: sends `farewell` (a DISCONNECT chunk) if the channel is open,
    /// closes the data channel (an SCTP stream reset, sent after any data still buffered),
    /// and closes the peer connection only once the channel reports `close` or after
    /// [`CLOSE_GRACE_MS`].
    ///
    /// Closing the `RTCPeerConnection` at once aborts the SCTP association: the peer's data
    /// channel then fires `error` ("User-Initiated Abort", SCTP cause 12) and whatever was
    /// still buffered — a farewell included — is lost; which of that error, the channel's
    /// `close` and our relayed close notice the peer sees first was a race (the flake of
    /// `webrtc_signalled_through_the_real_sbd_server`).
    fn close_gracefully(self, farewell: Option<Bytes>) {
        self.dc.set_onopen(None);
        self.dc.set_onmessage(None);
        self.dc.set_onerror(None);
        self.dc.set_onbufferedamountlow(None);
        self.dgram.set_onmessage(None);
        // Datagrams are lost without harm: it closes at once.
        self.dgram.close();
        self.pc.set_onicecandidate(None);
        self.pc.set_onconnectionstatechange(None);
        if self.dc.ready_state() != RtcDataChannelState::Open {
            return; // Drop closes both at once: nothing is in flight.
        }
        if let Some(chunk) = farewell {
            // Best effort: the relayed close notice carries the reason too.
            let _ = self.dc.send_with_u8_array(&chunk);
        }
        let (tx, rx) = oneshot::channel::<()>();
        let mut tx = Some(tx);
        let on_close = Closure::<dyn FnMut()>::new(move || {
            if let Some(tx) = tx.take() {
                let _ = tx.send(());
            }
        });
        self.dc.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        self.dc.close();
        spawn_local(async move {
            let grace = crate::browser::clock::sleep_ms(CLOSE_GRACE_MS);
            futures::future::select(rx, grace).await;
            drop(self); // unhooks, closes the peer connection
            drop(on_close);
        });
    }
}

impl Drop for Rtc {
    fn drop(&mut self) {
        self.dc.set_onopen(None);
        self.dc.set_onmessage(None);
        self.dc.set_onclose(None);
        self.dc.set_onerror(None);
        self.dc.set_onbufferedamountlow(None);
        self.dgram.set_onmessage(None);
        self.pc.set_onicecandidate(None);
        self.pc.set_onconnectionstatechange(None);
        self.dgram.close();
        self.dc.close();
        self.pc.close();
    }
}

impl WebRtcTransport {
    /// A transport speaking for `signal.local_url()`, receiving signal messages from
    /// `incoming` (the stream paired with `signal`). Returns the transport and its events.
    ///
    /// Registers a `pagehide` listener on the window (if there is one) that closes every
    /// connection.
    ///
    /// # Errors
    /// [`ConfigError`] naming the bad field if `config` fails [`NetConfig::validate`].
    pub fn new(
        signal: Rc<dyn Signal>,
        incoming: SignalRx,
        config: NetConfig,
    ) -> Result<(Self, NetEvents), ConfigError> {
        let local = signal.local_url().clone();
        let mgr = ConnManager::new(local.clone(), config.clone())?;
        let (events, events_rx) = mpsc::unbounded();
        let delivering = ByteBudget::new(MAX_QUEUED_DELIVERY_BYTES);
        let events_rx = BudgetedReceiver::new(events_rx, delivering.clone(), delivered_bytes);
        let (inbox, inbox_rx) = mpsc::unbounded();
        let window = web_sys::window();
        let me: Rc<RefCell<Weak<Shared>>> = Rc::default();
        let on_pagehide = window.as_ref().map(|w| {
            let (tx, me) = (inbox.clone(), me.clone());
            let c = Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
                let persisted = js_sys::Reflect::get(&e, &"persisted".into())
                    .ok()
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false);
                let why = if persisted { PAGE_HIDDEN } else { PAGE_CLOSED };
                let shared = me.borrow().upgrade();
                match shared {
                    // At once: a queued task may never run on a page being discarded.
                    Some(shared) if shared.state.try_borrow_mut().is_ok() => {
                        shared.handle(Ev::PageHide(why));
                    }
                    _ => {
                        let _ = tx.unbounded_send(Ev::PageHide(why));
                    }
                }
            });
            let _ = w.add_event_listener_with_callback("pagehide", c.as_ref().unchecked_ref());
            c
        });
        let shared = Rc::new(Shared {
            local: local.clone(),
            state: RefCell::new(State {
                mgr,
                conns: HashMap::default(),
                preflight: encode_preflight(&[]),
                stats: NetStats::default(),
                wake_at: None,
                closed: false,
            }),
            config,
            signal,
            events,
            inbox,
            delivering,
            membership: RefCell::default(),
            received: ByteBudget::new(MAX_QUEUED_RECEIVE_BYTES),
            on_pagehide,
        });
        let weak = Rc::downgrade(&shared);
        *me.borrow_mut() = weak.clone();
        let signal_events = incoming
            .map(|(from, bytes)| Ev::Signal(from, bytes))
            .chain(stream::iter(std::iter::once(Ev::SignalEnded)));
        spawn_local(drive(weak, stream::select(inbox_rx, signal_events)));
        Ok((WebRtcTransport { shared }, events_rx))
    }

    /// Our peer URL.
    pub fn local_url(&self) -> &Url {
        &self.shared.local
    }

    /// The configuration.
    pub fn config(&self) -> &NetConfig {
        &self.shared.config
    }

    /// The agent infos sent in our preflight on connections opened from now on (those
    /// already open keep what they got). Each should name [`local_url`](Self::local_url).
    pub fn set_local_agents(&self, agents: &[AgentInfoSigned]) {
        self.shared.state.borrow_mut().preflight = encode_preflight(agents);
    }

    /// The connection to `peer`, if any.
    pub fn connection(&self, peer: &Url) -> Option<ConnInfo> {
        self.shared.state.borrow().mgr.get(peer).cloned()
    }

    /// Number of connections (any phase).
    pub fn connection_count(&self) -> usize {
        self.shared.state.borrow().mgr.len()
    }

    /// The counters.
    pub fn stats(&self) -> NetStats {
        let st = self.shared.state.borrow();
        NetStats {
            conn: st.mgr.stats().clone(),
            ..st.stats.clone()
        }
    }

    /// Connects to `peer` (reusing a connection in any phase) and waits until both
    /// preflights are exchanged. Returns the path used.
    ///
    /// # Errors
    /// [`NetError::Conn`] for an unusable URL, [`NetError::Closed`] if the connection
    /// failed (its reason says why: timeouts, limits, the peer closed),
    /// [`NetError::TransportClosed`].
    pub async fn connect(&self, peer: &Url) -> Result<Path, NetError> {
        let conn = self.shared.ready_conn(peer).await?;
        Ok(conn.path.get())
    }

    /// Sends one message (an encoded `K2Proto`, e.g. from [`crate::wire`]'s `encode_*`) to
    /// `peer`, connecting on demand. Resolves when the last chunk was handed to the data
    /// channel or the signal path, after waiting for buffer space as needed.
    ///
    /// # Errors
    /// [`NetError::TooLarge`] over [`NetConfig::max_message_bytes`], otherwise as
    /// [`connect`](Self::connect); a connection that fails mid-message is closed.
    pub async fn send(&self, peer: &Url, msg: Bytes) -> Result<(), NetError> {
        let max = self.shared.config.max_message_bytes;
        if msg.len() > max {
            return Err(NetError::TooLarge {
                len: msg.len(),
                max,
            });
        }
        let conn = self.shared.ready_conn(peer).await?;
        self.shared.send_message(&conn, msg).await?;
        self.shared.state.borrow_mut().stats.messages_sent += 1;
        Ok(())
    }

    /// Sends one membership frame to `peer` as a datagram when its connection is open over
    /// WebRTC: whole, on the datagram channel, without waiting for the reliable channel's
    /// lock or buffer (it may be lost or arrive out of order). Dropped and counted
    /// ([`NetStats::datagrams_dropped`]) while that channel holds more than
    /// [`DATAGRAM_HIGH_WATER_BYTES`]. Otherwise (not connected yet, relayed, the channel not
    /// open, over [`MAX_DATAGRAM_BYTES`]) it goes as [`send`](Self::send) does.
    ///
    /// # Errors
    /// As [`send`](Self::send) when it falls back to it; a datagram sent or dropped is `Ok`.
    pub async fn send_datagram(&self, peer: &Url, msg: Bytes) -> Result<(), NetError> {
        if self.shared.try_datagram(peer, &msg) {
            return Ok(());
        }
        self.send(peer, msg).await
    }

    /// The membership messages received from now on, apart from the other events: the
    /// space driver takes them first ([`SpaceTransport`]). They share the delivery budget
    /// ([`MAX_QUEUED_DELIVERY_BYTES`]). Without this call they arrive with the rest.
    pub fn membership_events(&self) -> NetEvents {
        let (tx, rx) = mpsc::unbounded();
        *self.shared.membership.borrow_mut() = Some(tx);
        BudgetedReceiver::new(rx, self.shared.delivering.clone(), delivered_bytes)
    }

    /// Closes the connection to `peer`, telling it `reason`.
    pub fn close(&self, peer: &Url, reason: &str) {
        self.shared.state.borrow_mut().mgr.close(peer, reason);
        self.shared.drain_and_execute();
        self.shared.rearm();
    }

    /// The signal connection was lost (it may come back: a reconnecting signal keeps its
    /// receive stream open): relayed and still-negotiating connections fail now, as when the
    /// signal stream ends; direct WebRTC connections stay.
    pub fn signal_interrupted(&self) {
        let _ = self.shared.inbox.unbounded_send(Ev::SignalEnded);
    }

    /// Closes every connection, telling each peer `reason`. The transport stays usable.
    pub fn close_all(&self, reason: &str) {
        self.shared.state.borrow_mut().mgr.close_all(reason);
        self.shared.drain_and_execute();
        self.shared.rearm();
    }
}

impl Shared {
    /// Sends `msg` on `peer`'s datagram channel, or drops it if that channel is congested;
    /// `false` if there is no open datagram channel to `peer` (or `msg` is too large) and it
    /// must go the reliable way.
    fn try_datagram(&self, peer: &Url, msg: &Bytes) -> bool {
        if msg.len() > MAX_DATAGRAM_BYTES {
            return false;
        }
        let Some(conn) = self.state.borrow().conns.get(peer).cloned() else {
            return false;
        };
        if *conn.status.borrow() != Status::Ready || conn.path.get() != Path::WebRtc {
            return false;
        }
        let rtc = conn.rtc.borrow();
        let Some(dgram) = rtc.as_ref().map(|r| &r.dgram) else {
            return false;
        };
        if dgram.ready_state() != RtcDataChannelState::Open {
            return false;
        }
        if dgram.buffered_amount() > DATAGRAM_HIGH_WATER_BYTES {
            self.state.borrow_mut().stats.datagrams_dropped += 1;
            return true;
        }
        if dgram.send_with_u8_array(msg).is_err() {
            return false; // closing: the reliable path reports what happened
        }
        drop(rtc);
        self.touch(&conn);
        self.state.borrow_mut().stats.datagrams_sent += 1;
        true
    }

    /// The connection to `peer`, started if needed, once both preflights are exchanged. A
    /// connection replaced while we waited (glare, the peer reconnected) is followed to its
    /// replacement.
    async fn ready_conn(self: &Rc<Self>, peer: &Url) -> Result<Rc<Conn>, NetError> {
        let mut last_err = None;
        for _ in 0..4 {
            let conn = self.conn_for(peer)?;
            match wait_ready(&conn).await {
                Ok(()) => return Ok(conn),
                Err(reason) => {
                    let replaced = self
                        .state
                        .borrow()
                        .conns
                        .get(peer)
                        .is_some_and(|c| c.id != conn.id);
                    last_err = Some(NetError::Closed {
                        peer: peer.clone(),
                        reason,
                    });
                    if !replaced {
                        break;
                    }
                }
            }
        }
        Err(last_err.expect("the loop ran"))
    }

    fn conn_for(self: &Rc<Self>, peer: &Url) -> Result<Rc<Conn>, NetError> {
        {
            let mut st = self.state.borrow_mut();
            if st.closed {
                return Err(NetError::TransportClosed);
            }
            st.mgr.set_page_budget_left(page_budget_left());
            st.mgr
                .connect(peer, random_id(), crate::browser::clock::now())?;
        }
        self.drain_and_execute();
        self.rearm();
        self.state
            .borrow()
            .conns
            .get(peer)
            .cloned()
            .ok_or_else(|| NetError::Closed {
                peer: peer.clone(),
                reason: "connection could not start".into(),
            })
    }

    /// Sends one message on `conn`'s current path, chunked. Fails the connection on error.
    async fn send_message(self: &Rc<Self>, conn: &Rc<Conn>, msg: Bytes) -> Result<(), NetError> {
        let r = self.send_raw(conn, msg).await;
        if let Err(reason) = &r {
            self.state
                .borrow_mut()
                .mgr
                .fail(&conn.peer, conn.id, reason, true);
            self.drain_and_execute();
        }
        r.map_err(|reason| NetError::Closed {
            peer: conn.peer.clone(),
            reason,
        })
    }

    async fn send_raw(&self, conn: &Rc<Conn>, msg: Bytes) -> Result<(), String> {
        let _turn = conn.send_lock.lock().await;
        if let Status::Closed(r) = &*conn.status.borrow() {
            return Err(r.clone());
        }
        let max = self.config.max_message_bytes;
        match conn.path.get() {
            Path::WebRtc => {
                for chunk in
                    chunks(&msg, self.config.chunk_bytes, max).map_err(|e| e.to_string())?
                {
                    let dc = wait_buffer(conn, self.config.send_high_water_bytes).await?;
                    dc.send_with_u8_array(&chunk)
                        .map_err(|e| format!("data channel send failed: {}", describe_js(&e)))?;
                    self.touch(conn);
                }
            }
            Path::Relay => {
                let piece = self
                    .signal
                    .max_message_bytes()
                    .checked_sub(RELAY_OVERHEAD_BYTES)
                    .filter(|p| *p > 0)
                    .ok_or("signal path too small to relay")?;
                for chunk in chunks(&msg, piece, max).map_err(|e| e.to_string())? {
                    let frame = SignalFrame::Data {
                        conn: conn.id,
                        chunk,
                    }
                    .encode()
                    .map_err(|e| e.to_string())?;
                    let (ack, done) = oneshot::channel();
                    conn.outbox
                        .unbounded_send((frame, Some(ack)))
                        .map_err(|_| "connection closed".to_string())?;
                    match done.await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => return Err(format!("relay send failed: {e}")),
                        Err(_) => return Err("connection closed".into()),
                    }
                    if let Status::Closed(r) = &*conn.status.borrow() {
                        return Err(r.clone());
                    }
                    self.touch(conn);
                }
            }
        }
        Ok(())
    }

    /// Carries out the actions the manager queued for the last input, in order; called after
    /// every input. An action that feeds the manager another input (a routed chunk that
    /// completes a message, an overflowing command queue) drains that input's actions before
    /// the rest of this batch: the batch is taken out of the queue first.
    fn drain_and_execute(self: &Rc<Self>) {
        let batch: Vec<Action> = {
            let mut st = self.state.borrow_mut();
            std::iter::from_fn(|| st.mgr.poll_output()).collect()
        };
        for a in batch {
            self.execute(a);
        }
    }

    /// Carries out one of the manager's actions.
    fn execute(self: &Rc<Self>, a: Action) {
        match a {
            Action::Start {
                peer,
                conn,
                role,
                path,
            } => self.start(peer, conn, role, path),
            Action::Route { peer, conn, frame } => {
                let Some(c) = self.current(&peer, conn) else {
                    return;
                };
                match frame {
                    SignalFrame::Data { chunk, .. } => self.receive_chunk(&c, chunk),
                    other => self.queue_rtc(&c, RtcCmd::Remote(other)),
                }
            }
            Action::FallBack { peer, conn } => {
                let Some(c) = self.current(&peer, conn) else {
                    return;
                };
                c.path.set(Path::Relay);
                drop(c.rtc.borrow_mut().take());
                wake(&c.low_waker);
            }
            Action::Signal { peer, conn, frame } => {
                if let Some(c) = self.current(&peer, conn)
                    && let Err(e) = queue_signal(&c, frame)
                {
                    let _ = self.inbox.unbounded_send(Ev::RtcFailed(peer, conn, e));
                }
            }
            Action::SendPreflight { peer, conn } => {
                if let Some(c) = self.current(&peer, conn) {
                    self.send_preflight(&c);
                }
            }
            Action::Connected {
                peer,
                conn,
                path,
                agents,
            } => {
                if let Some(c) = self.current(&peer, conn) {
                    set_status(&c, Status::Ready);
                    let _ = self
                        .events
                        .unbounded_send(NetEvent::Connected { peer, path, agents });
                }
            }
            Action::Deliver {
                peer,
                conn,
                msg,
                len,
            } => {
                if !self.delivering.try_take(len) {
                    let why = format!(
                        "delivery queue over {} bytes: the app is not keeping up",
                        self.delivering.cap()
                    );
                    self.state.borrow_mut().mgr.fail(&peer, conn, &why, true);
                    self.drain_and_execute();
                    return;
                }
                let ev = NetEvent::Message { peer, msg, len };
                let urgent = self.membership.borrow();
                let to = match (&*urgent, &ev) {
                    (
                        Some(tx),
                        NetEvent::Message {
                            msg: WireMessage::Membership { .. },
                            ..
                        },
                    ) => tx,
                    _ => &self.events,
                };
                let _ = to.unbounded_send(ev);
            }
            Action::Disconnected { peer, reason } => {
                let _ = self
                    .events
                    .unbounded_send(NetEvent::Disconnected { peer, reason });
            }
            Action::Close {
                peer,
                conn,
                reason,
                notify,
            } => self.close_conn(&peer, conn, &reason, notify),
            Action::Reply { peer, frame } => {
                if let Ok(bytes) = frame.encode() {
                    let send = self.signal.send(&peer, bytes);
                    spawn_local(async move {
                        let _ = send.await;
                    });
                }
            }
        }
    }

    fn current(&self, peer: &Url, id: ConnId) -> Option<Rc<Conn>> {
        self.state
            .borrow()
            .conns
            .get(peer)
            .filter(|c| c.id == id)
            .cloned()
    }

    fn start(self: &Rc<Self>, peer: Url, id: ConnId, role: Role, path: Path) {
        let (outbox, outbox_rx) = mpsc::unbounded::<Outgoing>();
        let (rtc_cmds, rtc_rx) = mpsc::channel::<RtcCmd>(RTC_CMDS_CAPACITY);
        let conn = Rc::new(Conn {
            peer: peer.clone(),
            id,
            path: Cell::new(path),
            rtc: RefCell::new(None),
            status: RefCell::new(Status::Pending),
            status_wakers: RefCell::new(Vec::new()),
            low_waker: Rc::new(RefCell::new(None)),
            send_lock: futures::lock::Mutex::new(()),
            reassembler: RefCell::new(Reassembler::new(self.config.max_message_bytes)),
            next_receiving: Cell::new(Timestamp(0)),
            outbox,
            rtc_cmds: RefCell::new(rtc_cmds),
        });
        spawn_local(run_outbox(
            self.signal.clone(),
            peer.clone(),
            id,
            self.inbox.clone(),
            outbox_rx,
        ));
        if path == Path::WebRtc {
            match self.make_rtc(&peer, id, &conn.low_waker) {
                Ok(rtc) => *conn.rtc.borrow_mut() = Some(rtc),
                Err(e) => {
                    let _ = self
                        .inbox
                        .unbounded_send(Ev::RtcFailed(peer.clone(), id, e));
                }
            }
            spawn_local(run_rtc(Rc::downgrade(&conn), self.inbox.clone(), rtc_rx));
        }
        let old = self.state.borrow_mut().conns.insert(peer, conn.clone());
        if let Some(old) = old {
            self.shut(&old, "replaced", false);
        }
        if path == Path::WebRtc && role == Role::Initiator {
            self.queue_rtc(&conn, RtcCmd::MakeOffer);
        }
    }

    /// Queues `cmd` for `conn`'s WebRTC task. A full queue means the peer floods us with
    /// signal frames: count it and close the connection (never a silent drop).
    fn queue_rtc(self: &Rc<Self>, conn: &Rc<Conn>, cmd: RtcCmd) {
        let r = conn.rtc_cmds.borrow_mut().try_send(cmd);
        match r {
            Ok(()) => {}
            // Closed: the connection is gone already; nothing waits for the frame.
            Err(e) if e.is_disconnected() => {}
            Err(_) => {
                {
                    let mut st = self.state.borrow_mut();
                    st.stats.rtc_cmds_overflow += 1;
                    st.mgr.violation(
                        &conn.peer,
                        conn.id,
                        &format!("more than {RTC_CMDS_CAPACITY} signal frames queued"),
                    );
                }
                self.drain_and_execute();
            }
        }
    }

    fn make_rtc(
        &self,
        peer: &Url,
        id: ConnId,
        low_waker: &Rc<RefCell<Option<Waker>>>,
    ) -> Result<Rtc, String> {
        let cfg = RtcConfiguration::new();
        let servers = js_sys::Array::new();
        for s in &self.config.ice_servers {
            let server = RtcIceServer::new();
            let urls: js_sys::Array = s.urls.iter().map(|u| JsValue::from_str(u)).collect();
            server.set_urls(&urls);
            if let Some(u) = &s.username {
                server.set_username(u);
            }
            if let Some(c) = &s.credential {
                server.set_credential(c);
            }
            servers.push(&server);
        }
        cfg.set_ice_servers(&servers);
        let pc = RtcPeerConnection::new_with_configuration(&cfg).map_err(|e| describe_js(&e))?;
        PAGE_PEER_CONNECTIONS.with(|n| n.set(n.get() + 1));
        let init = RtcDataChannelInit::new();
        init.set_negotiated(true);
        init.set_id(DATA_CHANNEL_ID);
        init.set_ordered(true);
        let dc = pc.create_data_channel_with_data_channel_dict(DATA_CHANNEL_LABEL, &init);
        dc.set_binary_type(RtcDataChannelType::Arraybuffer);
        dc.set_buffered_amount_low_threshold(self.config.send_low_water_bytes);
        let init = RtcDataChannelInit::new();
        init.set_negotiated(true);
        init.set_id(DATAGRAM_CHANNEL_ID);
        init.set_ordered(false);
        init.set_max_retransmits(0);
        let dgram = pc.create_data_channel_with_data_channel_dict(DATAGRAM_CHANNEL_LABEL, &init);
        dgram.set_binary_type(RtcDataChannelType::Arraybuffer);

        let mut closures = Vec::new();
        let ev = |f: Box<dyn FnMut(JsValue)>| Closure::<dyn FnMut(JsValue)>::wrap(f);
        let (tx, p) = (self.inbox.clone(), peer.clone());
        let on_open = ev(Box::new(move |_| {
            let _ = tx.unbounded_send(Ev::DcOpen(p.clone(), id));
        }));
        let (tx, p, budget) = (self.inbox.clone(), peer.clone(), self.received.clone());
        let overflowed = Rc::new(Cell::new(false));
        let on_message = ev(Box::new(move |e: JsValue| {
            let Ok(e) = e.dyn_into::<MessageEvent>() else {
                return;
            };
            let data = e.data();
            // An overflowing connection is closing: nothing after the overflow is queued, so
            // the stream handed on is a whole prefix, never one with a hole.
            if overflowed.get() || !budget.try_take(message_len(&data)) {
                if !overflowed.replace(true) {
                    let why = format!(
                        "receive queue over {} bytes: this tab is not keeping up",
                        budget.cap()
                    );
                    let _ = tx.unbounded_send(Ev::DcError(p.clone(), id, why));
                }
                return;
            }
            let _ = tx.unbounded_send(Ev::DcMessage(p.clone(), id, data));
        }));
        let (tx, p, budget) = (self.inbox.clone(), peer.clone(), self.received.clone());
        let on_datagram = ev(Box::new(move |e: JsValue| {
            let Ok(e) = e.dyn_into::<MessageEvent>() else {
                return;
            };
            let data = e.data();
            // Over budget the tab is not keeping up: a datagram is dropped (counted), not
            // queued; the reliable channel's overflow rule closes the connection if it lasts.
            let ev = if budget.try_take(message_len(&data)) {
                Ev::Datagram(p.clone(), id, data)
            } else {
                Ev::DatagramOverBudget
            };
            let _ = tx.unbounded_send(ev);
        }));
        let (tx, p) = (self.inbox.clone(), peer.clone());
        let on_close = ev(Box::new(move |_| {
            let _ = tx.unbounded_send(Ev::DcClosed(p.clone(), id, "data channel closed"));
        }));
        let (tx, p) = (self.inbox.clone(), peer.clone());
        let on_error = ev(Box::new(move |e: JsValue| {
            let why = format!("data channel error: {}", describe_rtc_error(&e));
            let _ = tx.unbounded_send(Ev::DcError(p.clone(), id, why));
        }));
        let w = low_waker.clone();
        let on_low = ev(Box::new(move |_| wake(&w)));
        let (tx, p) = (self.inbox.clone(), peer.clone());
        let on_candidate = ev(Box::new(move |e: JsValue| {
            let Ok(e) = e.dyn_into::<RtcPeerConnectionIceEvent>() else {
                return;
            };
            // `null` marks the end of gathering; peers need no notice of it.
            if let Some(c) = e.candidate() {
                let cand = Candidate {
                    candidate: c.candidate(),
                    sdp_mid: c.sdp_mid(),
                    sdp_m_line_index: c.sdp_m_line_index(),
                };
                let _ = tx.unbounded_send(Ev::LocalCandidate(p.clone(), id, cand));
            }
        }));
        let (tx, p, pc2) = (self.inbox.clone(), peer.clone(), pc.clone());
        let on_state = ev(Box::new(move |_| {
            if pc2.connection_state() == RtcPeerConnectionState::Failed {
                let _ = tx.unbounded_send(Ev::RtcFailed(p.clone(), id, "ICE failed".into()));
            }
        }));
        dc.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        dc.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        dc.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        dc.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        dc.set_onbufferedamountlow(Some(on_low.as_ref().unchecked_ref()));
        dgram.set_onmessage(Some(on_datagram.as_ref().unchecked_ref()));
        pc.set_onicecandidate(Some(on_candidate.as_ref().unchecked_ref()));
        pc.set_onconnectionstatechange(Some(on_state.as_ref().unchecked_ref()));
        closures.extend([
            on_open,
            on_message,
            on_datagram,
            on_close,
            on_error,
            on_low,
            on_candidate,
            on_state,
        ]);
        Ok(Rtc {
            pc,
            dc,
            dgram,
            _closures: closures,
        })
    }

    /// Sends our preflight as the connection's first message ([`Action::SendPreflight`]);
    /// app messages wait for the ready status, which only the manager's
    /// [`Action::Connected`] sets.
    fn send_preflight(self: &Rc<Self>, conn: &Rc<Conn>) {
        let preflight = self.state.borrow().preflight.clone();
        let (me, conn) = (self.clone(), conn.clone());
        spawn_local(async move {
            // A failure already failed the connection (send_message).
            if me.send_message(&conn, preflight).await.is_ok() {
                let _ = me
                    .inbox
                    .unbounded_send(Ev::PreflightSent(conn.peer.clone(), conn.id));
            }
        });
    }

    /// Traffic on `conn`: a long message in progress keeps it off the idle list.
    fn touch(&self, conn: &Conn) {
        self.state
            .borrow_mut()
            .mgr
            .activity(&conn.peer, conn.id, crate::browser::clock::now());
    }

    fn receive_chunk(self: &Rc<Self>, conn: &Rc<Conn>, chunk: Bytes) {
        self.touch(conn);
        let r = conn.reassembler.borrow_mut().push(chunk);
        match r {
            Ok(Some(msg)) => self.receive_message(conn, msg),
            Ok(None) => self.receiving(conn),
            Err(e) => self.violation(conn, &e.to_string()),
        }
    }

    /// Part of a message arrived on `conn`: [`NetEvent::Receiving`], rate-limited, on the
    /// membership lane when there is one, so that whole messages waiting for the space do
    /// not hold it back (it tells membership that the peer is alive).
    fn receiving(&self, conn: &Conn) {
        let now = crate::browser::clock::now();
        if now < conn.next_receiving.get() || *conn.status.borrow() != Status::Ready {
            return;
        }
        conn.next_receiving.set(now.add_micros(RECEIVING_EVERY_US));
        let ev = NetEvent::Receiving {
            peer: conn.peer.clone(),
        };
        let urgent = self.membership.borrow();
        let _ = urgent.as_ref().unwrap_or(&self.events).unbounded_send(ev);
    }

    /// One whole message from the peer: the manager decodes it once and judges it.
    fn receive_message(self: &Rc<Self>, conn: &Rc<Conn>, msg: Bytes) {
        let now = crate::browser::clock::now();
        self.state
            .borrow_mut()
            .mgr
            .handle_message(&conn.peer, conn.id, msg, now);
        self.drain_and_execute();
    }

    /// The peer broke the protocol on `conn`: close it, telling the peer why.
    fn violation(self: &Rc<Self>, conn: &Rc<Conn>, what: &str) {
        self.state
            .borrow_mut()
            .mgr
            .violation(&conn.peer, conn.id, what);
        self.drain_and_execute();
    }

    /// The data-channel message telling the peer why we close: one chunk holding a K2
    /// DISCONNECT with `reason` (Kitsune2's in-band close reason).
    fn farewell(&self, reason: &str) -> Option<Bytes> {
        farewell(&self.config, reason)
    }

    fn close_conn(&self, peer: &Url, id: ConnId, reason: &str, notify: bool) {
        let Some(conn) = self.current(peer, id) else {
            return;
        };
        self.state.borrow_mut().conns.remove(peer);
        if notify
            && let Ok(frame) = (SignalFrame::Close {
                conn: id,
                reason: reason.to_owned(),
            })
            .encode()
        {
            let _ = conn.outbox.unbounded_send((frame, None));
        }
        self.shut(&conn, reason, notify);
    }

    /// Ends `conn`: closes its peer connection (telling the peer `reason` in-band first if
    /// `notify`), fails its waiters.
    fn shut(&self, conn: &Rc<Conn>, reason: &str, notify: bool) {
        if let Some(rtc) = conn.rtc.borrow_mut().take() {
            let farewell = notify.then(|| self.farewell(reason)).flatten();
            rtc.close_gracefully(farewell);
        }
        set_status(conn, Status::Closed(reason.to_owned()));
        wake(&conn.low_waker);
        conn.outbox.close_channel();
        conn.rtc_cmds.borrow_mut().close_channel();
    }

    /// Makes the driver task re-compute its sleep if the manager's next deadline moved
    /// earlier than the one it sleeps until (a later one is handled when it wakes).
    fn rearm(&self) {
        let st = self.state.borrow();
        let next = if st.closed {
            None
        } else {
            st.mgr.poll_timeout()
        };
        let earlier = match (next, st.wake_at) {
            (Some(n), Some(w)) => n < w,
            (Some(_), None) => true,
            (None, _) => false,
        };
        drop(st);
        if earlier {
            let _ = self.inbox.unbounded_send(Ev::Rearm);
        }
    }

    /// Handles one queued event (the driver task's body): feeds it to the manager, then
    /// carries out what the manager queued.
    fn handle(self: &Rc<Self>, ev: Ev) {
        let now = crate::browser::clock::now();
        match ev {
            Ev::Signal(from, bytes) => {
                let max = self.signal.max_message_bytes();
                let mut st = self.state.borrow_mut();
                match SignalFrame::decode(bytes, max) {
                    Ok(frame) => {
                        st.mgr.set_page_budget_left(page_budget_left());
                        st.mgr.handle_signal(&from, frame, now);
                    }
                    Err(_) => st.stats.malformed_signals += 1,
                }
            }
            Ev::SignalEnded => {
                // Relayed and still-negotiating connections cannot go on.
                let mut st = self.state.borrow_mut();
                let doomed: Vec<(Url, ConnId)> = st
                    .mgr
                    .iter()
                    .filter(|(_, c)| c.path == Path::Relay || c.phase != Phase::Open)
                    .map(|(u, c)| (u.clone(), c.conn))
                    .collect();
                for (u, id) in doomed {
                    st.mgr.fail(&u, id, "signal connection closed", false);
                }
            }
            Ev::Timer => self.state.borrow_mut().mgr.handle_timeout(now),
            Ev::Rearm | Ev::Shutdown => {}
            Ev::PageHide(PAGE_CLOSED) => self.state.borrow_mut().mgr.depart(PAGE_CLOSED),
            Ev::PageHide(why) => self.state.borrow_mut().mgr.close_all(why),
            Ev::DcOpen(peer, id) => self.state.borrow_mut().mgr.path_open(&peer, id, now),
            Ev::DcMessage(peer, id, data) => {
                self.received.give_back(message_len(&data));
                let Some(conn) = self.current(&peer, id) else {
                    return;
                };
                if conn.path.get() != Path::WebRtc {
                    return;
                }
                // Each drains the manager's actions itself (also reached from a routed chunk).
                match binary(data) {
                    Some(bytes) => self.receive_chunk(&conn, bytes),
                    None => self.violation(&conn, "text data-channel message"),
                }
            }
            Ev::Datagram(peer, id, data) => {
                self.received.give_back(message_len(&data));
                let Some(conn) = self.current(&peer, id) else {
                    return;
                };
                // The manager records the activity of an open connection.
                match binary(data) {
                    Some(bytes) => {
                        let mut st = self.state.borrow_mut();
                        st.mgr.handle_datagram(&peer, id, bytes, now);
                    }
                    None => self.violation(&conn, "text datagram"),
                }
            }
            Ev::DatagramOverBudget => self.state.borrow_mut().stats.datagrams_dropped += 1,
            Ev::DcClosed(peer, id, what) => {
                self.state.borrow_mut().mgr.fail(&peer, id, what, false);
            }
            Ev::DcError(peer, id, what) => {
                self.state.borrow_mut().mgr.fail(&peer, id, &what, false);
            }
            Ev::RtcFailed(peer, id, _why) => {
                self.state.borrow_mut().mgr.webrtc_failed(&peer, id, now);
            }
            Ev::LocalCandidate(peer, id, cand) => {
                self.state.borrow_mut().mgr.local_candidate(&peer, id, cand);
            }
            Ev::LocalDescription(peer, id, frame) => {
                self.state
                    .borrow_mut()
                    .mgr
                    .local_description(&peer, id, frame);
            }
            Ev::PreflightSent(peer, id) => {
                self.state.borrow_mut().mgr.preflight_sent(&peer, id, now);
            }
            Ev::SignalSendFailed(peer, id, e) => {
                let why = format!("signal send failed: {e}");
                self.state.borrow_mut().mgr.fail(&peer, id, &why, false);
            }
        }
        self.drain_and_execute();
        self.rearm();
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let st = self.state.get_mut();
        st.closed = true;
        if let (Some(w), Some(c)) = (web_sys::window(), &self.on_pagehide) {
            let _ = w.remove_event_listener_with_callback("pagehide", c.as_ref().unchecked_ref());
        }
        // Carried out here, not by `drain_and_execute`: the transport is going away.
        st.mgr.close_all("transport shut down");
        while let Some(a) = st.mgr.poll_output() {
            if let Action::Close {
                peer, conn, reason, ..
            } = a
                && let Some(c) = st.conns.remove(&peer).filter(|c| c.id == conn)
            {
                if let Ok(frame) = (SignalFrame::Close {
                    conn,
                    reason: reason.clone(),
                })
                .encode()
                {
                    let _ = c.outbox.unbounded_send((frame, None));
                }
                if let Some(rtc) = c.rtc.borrow_mut().take() {
                    rtc.close_gracefully(farewell(&self.config, &reason));
                }
                set_status(&c, Status::Closed(reason));
                wake(&c.low_waker);
                c.outbox.close_channel();
                c.rtc_cmds.borrow_mut().close_channel();
            }
        }
        let _ = self.inbox.unbounded_send(Ev::Shutdown);
    }
}

/// A [`WebRtcTransport`] with its event stream, as the space driver's
/// [`Transport`](crate::api::transport::Transport) ([`crate::core::space::run_space`]).
///
/// Events map one to one: `Connected` (with the preflight's verified agent infos, so the
/// space learns a peer's current URL at once), `Message` decoded (once, by the manager),
/// `Disconnected`. `close` tells the peer the reason through the signal path.
///
/// In the `testing` build only, `crate::testing::partition` can make it drop every frame
/// sent (reporting success) and every message received.
pub struct SpaceTransport {
    net: WebRtcTransport,
    events: RefCell<NetEvents>,
    /// Membership messages, taken before `events` ([`WebRtcTransport::membership_events`]).
    membership: RefCell<NetEvents>,
}

impl SpaceTransport {
    /// Wraps a transport and the events [`WebRtcTransport::new`] returned with it.
    pub fn new(net: WebRtcTransport, events: NetEvents) -> Self {
        let membership = RefCell::new(net.membership_events());
        SpaceTransport {
            net,
            events: RefCell::new(events),
            membership,
        }
    }

    /// The transport.
    pub fn net(&self) -> &WebRtcTransport {
        &self.net
    }
}

impl SpaceTransport {
    /// Carries out `send` (a send on the transport) unless the `testing` build's partition
    /// switch is on: then the frame is lost on the way, as far as the sender can tell.
    fn unless_partitioned<'a>(
        &'a self,
        send: impl std::future::Future<Output = Result<(), NetError>> + 'a,
    ) -> futures::future::LocalBoxFuture<'a, Result<(), crate::api::transport::TransportError>>
    {
        Box::pin(async move {
            #[cfg(feature = "testing")]
            if crate::testing::partition::partitioned() {
                return Ok(());
            }
            send.await
                .map_err(|e| crate::api::transport::TransportError(e.to_string()))
        })
    }
}

impl crate::api::transport::Transport for SpaceTransport {
    fn send(
        &self,
        to: &Url,
        frame: Bytes,
    ) -> futures::future::LocalBoxFuture<'_, Result<(), crate::api::transport::TransportError>>
    {
        let to = to.clone();
        self.unless_partitioned(async move { self.net.send(&to, frame).await })
    }

    fn send_datagram(
        &self,
        to: &Url,
        frame: Bytes,
    ) -> futures::future::LocalBoxFuture<'_, Result<(), crate::api::transport::TransportError>>
    {
        let to = to.clone();
        self.unless_partitioned(async move { self.net.send_datagram(&to, frame).await })
    }

    fn close(&self, peer: &Url, reason: &str) {
        self.net.close(peer, reason);
    }

    fn next_event(
        &self,
    ) -> futures::future::LocalBoxFuture<'_, Option<crate::api::transport::TransportEvent>> {
        use crate::api::transport::TransportEvent;
        Box::pin(async move {
            // Borrowed only while polling: cancel-safe, never held across a suspension.
            let ev = loop {
                let ev = poll_fn(|cx| {
                    // Membership first; it ends with the transport, as the rest does.
                    match self.membership.borrow_mut().poll_next_unpin(cx) {
                        Poll::Ready(Some(ev)) => Poll::Ready(Some(ev)),
                        _ => self.events.borrow_mut().poll_next_unpin(cx),
                    }
                })
                .await?;
                if !partition_drops(&ev) {
                    break ev;
                }
            };
            Some(match ev {
                NetEvent::Connected { peer, agents, .. } => {
                    TransportEvent::Connected { peer, agents }
                }
                NetEvent::Message { peer, msg, len } => TransportEvent::Message {
                    from: peer,
                    msg,
                    len,
                },
                NetEvent::Receiving { peer } => TransportEvent::Receiving { from: peer },
                NetEvent::Disconnected { peer, reason } => {
                    TransportEvent::Disconnected { peer, reason }
                }
            })
        })
    }
}

/// Whether the `testing` build's partition switch ([`crate::testing::partition`]) drops
/// `ev`, a received message, as lost on the way. Always false in other builds.
fn partition_drops(ev: &NetEvent) -> bool {
    #[cfg(feature = "testing")]
    return crate::testing::partition::partitioned()
        && matches!(ev, NetEvent::Message { .. } | NetEvent::Receiving { .. });
    #[cfg(not(feature = "testing"))]
    {
        let _ = ev;
        false
    }
}

/// The driver: handles queued events one at a time until the transport is gone, and
/// sleeps ([`crate::browser::clock::sleep_ms`]) until the manager's next deadline, which it
/// handles as [`Ev::Timer`].
async fn drive(shared: Weak<Shared>, events: impl futures::Stream<Item = Ev> + Unpin) {
    let mut events = events.fuse();
    loop {
        let wake_at = {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let mut st = shared.state.borrow_mut();
            st.wake_at = if st.closed {
                None
            } else {
                st.mgr.poll_timeout()
            };
            st.wake_at
        };
        let mut sleep = match wake_at {
            Some(at) => {
                crate::browser::clock::sleep_ms(crate::browser::clock::ms_until(at)).left_future()
            }
            None => futures::future::pending().right_future(),
        }
        .fuse();
        let ev = futures::select! {
            ev = events.next() => match ev {
                Some(ev) => ev,
                None => return,
            },
            () = sleep => Ev::Timer,
        };
        if matches!(ev, Ev::Shutdown) {
            return;
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.handle(ev);
    }
}

/// Sends a connection's signal messages in order; reports failures of un-acked sends.
async fn run_outbox(
    signal: Rc<dyn Signal>,
    peer: Url,
    id: ConnId,
    inbox: mpsc::UnboundedSender<Ev>,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
) {
    while let Some((bytes, ack)) = rx.next().await {
        let r = signal.send(&peer, bytes).await;
        match ack {
            Some(ack) => {
                let _ = ack.send(r);
            }
            None => {
                if let Err(e) = r {
                    let _ = inbox.unbounded_send(Ev::SignalSendFailed(peer.clone(), id, e));
                }
            }
        }
    }
}

/// Runs a connection's offer/answer/candidate steps strictly in order.
async fn run_rtc(
    conn: Weak<Conn>,
    inbox: mpsc::UnboundedSender<Ev>,
    mut rx: mpsc::Receiver<RtcCmd>,
) {
    while let Some(cmd) = rx.next().await {
        let Some(c) = conn.upgrade() else {
            return;
        };
        let Some(pc) = c.rtc.borrow().as_ref().map(|r| r.pc.clone()) else {
            continue;
        };
        let (peer, id) = (c.peer.clone(), c.id);
        drop(c);
        let r = match cmd {
            RtcCmd::MakeOffer => make_local(&pc, RtcSdpType::Offer)
                .await
                .map(|sdp| Some(SignalFrame::Offer { conn: id, sdp })),
            RtcCmd::Remote(SignalFrame::Offer { sdp, .. }) => {
                if pc.remote_description().is_some() {
                    Ok(None) // a repeated offer
                } else {
                    match set_remote(&pc, RtcSdpType::Offer, &sdp).await {
                        Ok(()) => make_local(&pc, RtcSdpType::Answer)
                            .await
                            .map(|sdp| Some(SignalFrame::Answer { conn: id, sdp })),
                        Err(e) => Err(e),
                    }
                }
            }
            RtcCmd::Remote(SignalFrame::Answer { sdp, .. }) => {
                if pc.remote_description().is_some() {
                    Ok(None)
                } else {
                    set_remote(&pc, RtcSdpType::Answer, &sdp)
                        .await
                        .map(|()| None)
                }
            }
            RtcCmd::Remote(SignalFrame::Candidate { candidate, .. }) => {
                // A candidate the browser rejects only loses that route; ICE decides.
                let _ = add_candidate(&pc, &candidate).await;
                Ok(None)
            }
            RtcCmd::Remote(_) => Ok(None),
        };
        if conn.upgrade().is_none() {
            return;
        }
        match r {
            Ok(Some(frame)) => {
                let _ = inbox.unbounded_send(Ev::LocalDescription(peer, id, frame));
            }
            Ok(None) => {}
            Err(e) => {
                let _ = inbox.unbounded_send(Ev::RtcFailed(peer, id, e));
            }
        }
    }
}

/// Queues `frame` (our offer, answer or a candidate) on `conn`'s ordered signal queue.
///
/// # Errors
/// The frame does not encode (e.g. a browser SDP over the frame limit): the caller reports
/// it as a WebRTC failure.
fn queue_signal(conn: &Conn, frame: SignalFrame) -> Result<(), String> {
    let bytes = frame.encode().map_err(|e| format!("signal frame: {e}"))?;
    // A closed outbox means the connection is gone; nothing waits for the frame.
    let _ = conn.outbox.unbounded_send((bytes, None));
    Ok(())
}

/// The browser's description of a data channel `error` event (`RTCErrorEvent.error`:
/// message, `errorDetail`, SCTP cause code), for the close reason.
fn describe_rtc_error(e: &JsValue) -> String {
    let get = |o: &JsValue, k: &str| js_sys::Reflect::get(o, &JsValue::from_str(k)).ok();
    let Some(err) = get(e, "error").filter(|v| !v.is_undefined() && !v.is_null()) else {
        return "no detail".into();
    };
    let mut out = describe_js(&err);
    for k in ["errorDetail", "sctpCauseCode"] {
        if let Some(v) = get(&err, k).filter(|v| !v.is_undefined() && !v.is_null()) {
            out.push_str(&format!(
                " ({k} {})",
                v.as_string()
                    .or_else(|| v.as_f64().map(|f| f.to_string()))
                    .unwrap_or_default()
            ));
        }
    }
    out
}

async fn make_local(pc: &RtcPeerConnection, ty: RtcSdpType) -> Result<String, String> {
    let promise = match ty {
        RtcSdpType::Offer => pc.create_offer(),
        _ => pc.create_answer(),
    };
    let desc = JsFuture::from(promise).await.map_err(|e| describe_js(&e))?;
    let sdp = js_sys::Reflect::get(&desc, &JsValue::from_str("sdp"))
        .ok()
        .and_then(|s| s.as_string())
        .ok_or("session description without sdp")?;
    let init = RtcSessionDescriptionInit::new(ty);
    init.set_sdp(&sdp);
    JsFuture::from(pc.set_local_description(&init))
        .await
        .map_err(|e| describe_js(&e))?;
    Ok(sdp)
}

async fn set_remote(pc: &RtcPeerConnection, ty: RtcSdpType, sdp: &str) -> Result<(), String> {
    let init = RtcSessionDescriptionInit::new(ty);
    init.set_sdp(sdp);
    JsFuture::from(pc.set_remote_description(&init))
        .await
        .map(|_| ())
        .map_err(|e| describe_js(&e))
}

async fn add_candidate(pc: &RtcPeerConnection, c: &Candidate) -> Result<(), String> {
    let init = RtcIceCandidateInit::new(&c.candidate);
    init.set_sdp_mid(c.sdp_mid.as_deref());
    init.set_sdp_m_line_index(c.sdp_m_line_index);
    JsFuture::from(pc.add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init)))
        .await
        .map(|_| ())
        .map_err(|e| describe_js(&e))
}

/// Waits until `conn` may carry app messages; `Err(reason)` if it closed first.
async fn wait_ready(conn: &Rc<Conn>) -> Result<(), String> {
    poll_fn(|cx| match &*conn.status.borrow() {
        Status::Ready => Poll::Ready(Ok(())),
        Status::Closed(r) => Poll::Ready(Err(r.clone())),
        Status::Pending => {
            conn.status_wakers.borrow_mut().push(cx.waker().clone());
            Poll::Pending
        }
    })
    .await
}

/// Waits until the data channel's buffer is at or below `high`; returns the channel.
async fn wait_buffer(conn: &Rc<Conn>, high: u32) -> Result<RtcDataChannel, String> {
    poll_fn(|cx| {
        if let Status::Closed(r) = &*conn.status.borrow() {
            return Poll::Ready(Err(r.clone()));
        }
        let rtc = conn.rtc.borrow();
        let Some(rtc) = rtc.as_ref() else {
            return Poll::Ready(Err("connection left WebRTC".to_string()));
        };
        if rtc.dc.ready_state() != RtcDataChannelState::Open {
            return Poll::Ready(Err("data channel not open".to_string()));
        }
        if rtc.dc.buffered_amount() <= high {
            return Poll::Ready(Ok(rtc.dc.clone()));
        }
        *conn.low_waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    })
    .await
}

fn set_status(conn: &Conn, status: Status) {
    *conn.status.borrow_mut() = status;
    for w in conn.status_wakers.borrow_mut().drain(..) {
        w.wake();
    }
}

fn wake(w: &RefCell<Option<Waker>>) {
    if let Some(w) = w.borrow_mut().take() {
        w.wake();
    }
}

fn random_id() -> ConnId {
    let mut b = [0u8; 8];
    // The browser's crypto.getRandomValues; it does not fail in a page or worker.
    getrandom::fill(&mut b).expect("getrandom");
    u64::from_be_bytes(b)
}
