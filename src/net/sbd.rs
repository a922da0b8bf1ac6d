//! The sbd relay client protocol, as a sans-IO state machine ([`SbdClient`]).
//!
//! sbd ("simple websocket-based message relay", `holochain/sbd` `spec.md`) carries our
//! signalling and, when WebRTC cannot connect, relayed data. A client opens one WebSocket to
//! `ws[s]://host:port/<base64url-nopad ed25519 pubkey>` ([`connect_url`]); every WebSocket
//! binary message is one sbd message: a 32-byte header followed by data, at most
//! [`MAX_MESSAGE_BYTES`] in all (spec §1.1.1, §3.2.1).
//!
//! - A header of 28 zero bytes and four ASCII bytes is a *command* (`lbrt`, `lidl`, `areq`,
//!   `ares`, `srdy`, `keep`); any other header is a peer's public key and the message is a
//!   *forward*: to that peer when we send it, from that peer when we receive it (§3.2.2).
//! - The server sends `areq` with a 32-byte nonce; we answer `ares` with the 64-byte ed25519
//!   signature of the nonce by the connection key; the server answers `srdy`, and only then may
//!   we send forwards and `keep` (§3.2.3). Forwards the app sends earlier wait in the queue.
//! - `lbrt` (i32 BE, nanoseconds of rate budget one byte costs) paces what we send (§3.2.5),
//!   `lidl` (i32 BE, ms the server keeps a silent connection) makes us send `keep` in time
//!   (§3.2.4). Unknown commands are ignored (§3.2.6).
//! - The server never speaks unasked, so a connection whose network path is gone while the
//!   socket still looks open (half-open: a laptop that slept, a NAT that forgot us) would go
//!   unnoticed until TCP gives up, many minutes later. After [`SbdConfig::probe_after`] with
//!   nothing received we send a forward with no payload to our own key, which the server
//!   returns like any forward (it does not refuse self-addressed ones: `cslot.rs` in
//!   `sbd-server`); with nothing received within [`SbdConfig::probe_timeout`] of it, the
//!   connection closes with [`CloseReason::Unresponsive`]. Like any message we send, the
//!   probe also keeps the connection from idling out.
//!
//! The core owns no socket, clock, timer or random source. The driver (the browser glue in
//! `sbd_ws`, the native conformance runner in `examples/`) feeds it inbound WebSocket messages
//! ([`SbdClient::handle_message`]), app commands ([`SbdClient::send`], [`SbdClient::close`]),
//! transport failures and the current time, and after each input drains
//! [`SbdClient::poll_transmit`] (WebSocket messages to send now), [`SbdClient::poll_event`]
//! and [`SbdClient::poll_timeout`] (when to call again).
//!
//! **Time** is the crate's [`Timestamp`]: microseconds (µs). Only differences matter, so any
//! origin works as long as one connection always uses the same clock; a clock that steps
//! backwards delays sends and keepalives but never panics.
//!
//! **Untrusted input**: every inbound message is checked (length, command shape, state);
//! a violation closes the connection with [`CloseReason::Protocol`] and never panics. The
//! driver then drops the WebSocket.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use ed25519_dalek::{Signer, SigningKey};

use crate::model::config::{ConfigError, positive};
use crate::model::time::{Timestamp, micros};

/// Bytes in every sbd message header: a 32-byte ed25519 public key, or 28 zero bytes and a
/// four-byte command (spec §3.2.1).
pub const HEADER_BYTES: usize = 32;

/// Largest sbd message, header included, in either direction: 20 000 bytes (spec §1.1.1).
pub const MAX_MESSAGE_BYTES: usize = 20_000;

/// Largest forward payload we can send or receive: [`MAX_MESSAGE_BYTES`] − [`HEADER_BYTES`]
/// = 19 968 bytes.
pub const MAX_PAYLOAD_BYTES: usize = MAX_MESSAGE_BYTES - HEADER_BYTES;

/// The rate limit assumed until the server sends `lbrt`: 8 000 ns per byte (1 000 kbit/s),
/// the sbd server's default and the upstream client's assumption (spec §3.2.5).
pub const DEFAULT_LIMIT_BYTE_NANOS: u64 = 8_000;

/// The idle limit assumed until the server sends `lidl`: 10 000 ms, the sbd server's default
/// (spec §3.2.4).
pub const DEFAULT_LIMIT_IDLE_MILLIS: u64 = 10_000;

/// Shortest keepalive interval we accept, in ms, however small the server's `lidl`: bounds
/// the keepalive traffic a hostile server can make us send to 32 bytes per 100 ms.
pub const MIN_KEEPALIVE_MILLIS: u64 = 100;

/// Percent added to the server's `lbrt` when pacing, for clock skew and network backlog
/// (spec §3.2.5 suggests `lbrt * 1.1`; the upstream client uses the same).
pub const RATE_MARGIN_PERCENT: u64 = 10;

/// Bytes of a public key (ed25519), which is also the forward header.
const PUB_KEY_BYTES: usize = 32;
/// Bytes of the `areq` nonce (spec §3.2.1).
const NONCE_BYTES: usize = 32;
/// Bytes of the ed25519 signature in `ares`.
const SIGNATURE_BYTES: usize = 64;
/// A command header starts with this many zero bytes (spec §3.2.1).
const CMD_PREFIX_BYTES: usize = 28;

const CMD_LBRT: [u8; 4] = *b"lbrt";
const CMD_LIDL: [u8; 4] = *b"lidl";
const CMD_AREQ: [u8; 4] = *b"areq";
const CMD_ARES: [u8; 4] = *b"ares";
const CMD_SRDY: [u8; 4] = *b"srdy";
const CMD_KEEP: [u8; 4] = *b"keep";

/// An sbd client identity: a 32-byte ed25519 public key. It names a connection on the server
/// and is the header of every forward (spec §3.1, §3.2.2).
///
/// Display and Debug use base64url without padding, the form of the connect path.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PubKey(pub [u8; PUB_KEY_BYTES]);

impl PubKey {
    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; PUB_KEY_BYTES] {
        &self.0
    }

    /// The base64url-nopad form used as the connect path (spec §3.1).
    pub fn to_b64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// Parses the base64url-nopad form of 32 bytes.
    ///
    /// # Errors
    /// [`PubKeyError`] if `s` is not base64url-nopad or does not decode to exactly 32 bytes.
    pub fn from_b64url(s: &str) -> Result<Self, PubKeyError> {
        let v = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|e| PubKeyError(format!("{s:?}: {e}")))?;
        Self::from_slice(&v)
    }

    /// A key from a slice of exactly 32 bytes.
    ///
    /// # Errors
    /// [`PubKeyError`] if `b` is not 32 bytes long.
    pub fn from_slice(b: &[u8]) -> Result<Self, PubKeyError> {
        <[u8; PUB_KEY_BYTES]>::try_from(b)
            .map(PubKey)
            .map_err(|_| PubKeyError(format!("{} bytes, expected 32", b.len())))
    }

    /// True if this key starts with 28 zero bytes: as a header it would read as a command,
    /// so no message can be forwarded to it (spec §3.2.1).
    pub fn is_command_like(&self) -> bool {
        self.0[..CMD_PREFIX_BYTES].iter().all(|b| *b == 0)
    }
}

impl fmt::Display for PubKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_b64url())
    }
}

impl fmt::Debug for PubKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PubKey({})", self.to_b64url())
    }
}

/// A public key that could not be parsed; the text says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid sbd public key {0}")]
pub struct PubKeyError(pub String);

/// The WebSocket URL to open for `key` on the sbd server at `server_url`
/// (`ws://host:port` or `wss://host:port`, a trailing `/` is ignored):
/// `<server_url>/<base64url-nopad key>` (spec §3.1). The same string is this client's peer
/// URL in agent infos.
pub fn connect_url(server_url: &str, key: &PubKey) -> String {
    format!("{}/{}", server_url.trim_end_matches('/'), key.to_b64url())
}

/// Tunables of one [`SbdClient`]. Checked by [`SbdConfig::validate`] ([`SbdClient::new`]
/// refuses an invalid one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SbdConfig {
    /// Most bytes (whole sbd messages, headers included) the send queue holds; beyond it
    /// [`SbdClient::send`] fails with [`SendError::Full`]. Default 160 000 (8 full messages,
    /// like the upstream client). At least one full message is always accepted into an
    /// empty queue.
    pub send_queue_bytes: usize,
    /// Time from [`SbdClient::new`] until `srdy` must have arrived, WebSocket connect
    /// included; later the connection closes with [`CloseReason::HandshakeTimeout`]. Default
    /// 20 s. At least 1 µs.
    pub handshake_timeout: Duration,
    /// Time with nothing received from the server after which we probe it with a forward to
    /// ourselves (see the [module docs](self)). Default 30 s: one 32-byte message each way
    /// per 30 s on an idle connection, and a dead one found within 45 s. At least 1 µs.
    pub probe_after: Duration,
    /// Time after a probe within which something must arrive, or the connection closes with
    /// [`CloseReason::Unresponsive`]. Default 15 s, far above a slow link's round trip; the
    /// echo may also queue behind relayed data the server is sending us. At least 1 µs.
    pub probe_timeout: Duration,
}

impl Default for SbdConfig {
    fn default() -> Self {
        SbdConfig {
            send_queue_bytes: 8 * MAX_MESSAGE_BYTES,
            handshake_timeout: Duration::from_secs(20),
            probe_after: Duration::from_secs(30),
            probe_timeout: Duration::from_secs(15),
        }
    }
}

impl SbdConfig {
    /// Checks every field the client cannot run with.
    ///
    /// # Errors
    /// [`ConfigError`] naming the bad field: `sbd.handshake_timeout`, `sbd.probe_after` or
    /// `sbd.probe_timeout` under 1 µs.
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive("sbd.handshake_timeout", self.handshake_timeout)?;
        positive("sbd.probe_after", self.probe_after)?;
        positive("sbd.probe_timeout", self.probe_timeout)
    }
}

/// Why [`SbdClient::generate`] failed.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The config failed [`SbdConfig::validate`].
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The platform has no random source for the key.
    #[error("no random source for the sbd key: {0}")]
    Random(getrandom::Error),
}

/// What the core reports to the app, in order, through [`SbdClient::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SbdEvent {
    /// `srdy` arrived: the server accepted our signature; queued forwards now flow (§3.2.3).
    Ready,
    /// A forward from a peer (§3.2.2); `payload` is at most [`MAX_PAYLOAD_BYTES`] bytes,
    /// possibly empty.
    Message {
        /// The sender's connection key (the header the server rewrote).
        from: PubKey,
        /// The data after the header.
        payload: Bytes,
    },
    /// After a [`SendError::Full`], the send queue has drained to half its capacity or less;
    /// sending may resume. Emitted once per `Full` episode.
    Writable,
    /// The connection is over; emitted exactly once, always the last event. The driver must
    /// drop (close) the WebSocket.
    Closed {
        /// Why it closed.
        reason: CloseReason,
    },
}

/// Why a connection closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloseReason {
    /// The app called [`SbdClient::close`] with this reason.
    #[error("closed locally")]
    Local,
    /// The WebSocket failed or the server closed it (the driver's description).
    #[error("transport closed: {0}")]
    Transport(String),
    /// `srdy` did not arrive within [`SbdConfig::handshake_timeout`].
    #[error("no srdy within the handshake timeout")]
    HandshakeTimeout,
    /// Nothing arrived within [`SbdConfig::probe_timeout`] (`waited_ms`) of a probe: the
    /// connection is half-open or the server is stuck.
    #[error("no answer from the server {waited_ms} ms after a liveness probe")]
    Unresponsive {
        /// The probe timeout, ms.
        waited_ms: u64,
    },
    /// The server broke the protocol.
    #[error("protocol violation: {0}")]
    Protocol(#[from] ProtocolError),
}

/// A protocol violation by the server (or whatever answers at its address). Each one closes
/// the connection with [`CloseReason::Protocol`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A message shorter than the 32-byte header (§3.2.1: "messages less than 32 bytes are
    /// invalid").
    #[error("message of {len} bytes is shorter than the 32-byte header")]
    Short {
        /// Bytes received.
        len: usize,
    },
    /// A message over [`MAX_MESSAGE_BYTES`] (§1.1.1).
    #[error("message of {len} bytes exceeds the 20000-byte maximum")]
    Oversize {
        /// Bytes received.
        len: usize,
    },
    /// `lbrt`, `lidl` (32 + 4 bytes) or `areq` (32 + 32 bytes) with another length (§3.2.1).
    #[error("{cmd} command of {len} bytes has the wrong length")]
    BadCommandLength {
        /// The four command letters (lossy UTF-8).
        cmd: String,
        /// Bytes received.
        len: usize,
    },
    /// A forward before `srdy` (§3.2.3: forwards come only after `srdy`).
    #[error("forward before srdy")]
    ForwardBeforeReady,
    /// A second `areq` (§3.2.3: `areq` is sent once per connection).
    #[error("repeated areq")]
    RepeatedAuthRequest,
    /// `srdy` before we answered an `areq` (§3.2.3: `srdy` follows a valid `ares`).
    #[error("srdy before areq")]
    ReadyBeforeAuth,
    /// A text WebSocket message; sbd messages are binary (reported by the driver through
    /// [`SbdClient::close`]).
    #[error("text websocket message")]
    TextMessage,
}

/// Why [`SbdClient::send`] refused a message. Nothing was queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The payload is over [`MAX_PAYLOAD_BYTES`] (§1.1.1); split it above this layer.
    #[error("payload of {len} bytes exceeds the {max}-byte sbd maximum")]
    TooLarge {
        /// Payload bytes offered.
        len: usize,
        /// [`MAX_PAYLOAD_BYTES`].
        max: usize,
    },
    /// The destination starts with 28 zero bytes and would read as a command (§3.2.1).
    #[error("destination key reads as an sbd command header")]
    CommandLikeDestination,
    /// Back-pressure: the send queue is full (see [`SbdConfig::send_queue_bytes`]); wait for
    /// [`SbdEvent::Writable`] and send again.
    #[error("send queue full ({queued} of {capacity} bytes)")]
    Full {
        /// Bytes queued now.
        queued: usize,
        /// [`SbdConfig::send_queue_bytes`].
        capacity: usize,
    },
    /// The connection is closed.
    #[error("connection closed")]
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for `areq` (limits may arrive meanwhile).
    AwaitAuth,
    /// `ares` queued or sent; waiting for `srdy`.
    AwaitReady,
    /// `srdy` seen: forwards and `keep` may flow.
    Ready,
    /// Over; all inputs are ignored.
    Closed,
}

/// One sbd client connection as a sans-IO state machine (see the [module docs](self)).
///
/// Sizes are bytes, times are [`Timestamp`] µs. The connection key signs the server's nonce;
/// use a fresh key for every connection ([`SbdClient::generate`]; spec §3.1).
pub struct SbdClient {
    key: SigningKey,
    pub_key: PubKey,
    config: SbdConfig,
    state: State,
    handshake_deadline: Timestamp,
    /// Server `lbrt`, ns per byte, clamped to ≥ 0.
    limit_byte_nanos: u64,
    /// Server `lidl`, ms.
    limit_idle_millis: u64,
    /// Earliest time the next paced message may go out.
    next_send_at: Timestamp,
    /// When we last handed a message to the driver (anything counts for `lidl`).
    last_sent: Timestamp,
    /// When a message from the server was last seen by a timed call (see `heard`).
    last_received: Timestamp,
    /// A message arrived since the last timed call; `handle_message` has no clock, so the
    /// next [`SbdClient::handle_timeout`] or [`SbdClient::poll_transmit`] dates it.
    heard: bool,
    /// When the outstanding probe went out; cleared by anything received.
    probe_sent: Option<Timestamp>,
    /// The `ares` answer, sent ahead of the queue.
    pending_ares: Option<Vec<u8>>,
    /// Whole forward messages (header + payload) waiting for `srdy` or for pacing.
    queue: VecDeque<Vec<u8>>,
    queued_bytes: usize,
    /// A `Full` was reported and `Writable` not yet.
    want_writable: bool,
    events: VecDeque<SbdEvent>,
}

impl fmt::Debug for SbdClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SbdClient")
            .field("pub_key", &self.pub_key)
            .field("state", &self.state)
            .field("limit_byte_nanos", &self.limit_byte_nanos)
            .field("limit_idle_millis", &self.limit_idle_millis)
            .field("queued_bytes", &self.queued_bytes)
            .finish_non_exhaustive()
    }
}

impl SbdClient {
    /// A new connection with a fresh random key (from the platform's CSPRNG via `getrandom`;
    /// keys whose public half would read as a command header are redrawn). `now` starts the
    /// handshake timeout.
    ///
    /// # Errors
    /// [`GenerateError::Config`] if `config` fails [`SbdConfig::validate`],
    /// [`GenerateError::Random`] if the platform has no random source.
    pub fn generate(config: SbdConfig, now: Timestamp) -> Result<Self, GenerateError> {
        config.validate()?;
        let key = Self::generate_key().map_err(GenerateError::Random)?;
        Ok(Self::new(config, key, now)?)
    }

    /// A fresh random connection key (from the platform's CSPRNG via `getrandom`); keys whose
    /// public half would read as a command header are redrawn.
    ///
    /// # Errors
    /// The platform has no random source.
    pub fn generate_key() -> Result<SigningKey, getrandom::Error> {
        loop {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed)?;
            let key = SigningKey::from_bytes(&seed);
            if !PubKey(key.verifying_key().to_bytes()).is_command_like() {
                return Ok(key);
            }
        }
    }

    /// A new connection signing with `key`: a reconnect reuses the key of the lost
    /// connection so the peer URL stays the same (tests and fixtures use it too). `now`
    /// starts the handshake timeout. Open the WebSocket at [`SbdClient::url`].
    ///
    /// # Errors
    /// [`ConfigError`] naming the bad field if `config` fails [`SbdConfig::validate`].
    pub fn new(config: SbdConfig, key: SigningKey, now: Timestamp) -> Result<Self, ConfigError> {
        config.validate()?;
        let pub_key = PubKey(key.verifying_key().to_bytes());
        let timeout_us = micros(config.handshake_timeout);
        Ok(SbdClient {
            key,
            pub_key,
            state: State::AwaitAuth,
            handshake_deadline: now.add_micros(timeout_us),
            limit_byte_nanos: DEFAULT_LIMIT_BYTE_NANOS,
            limit_idle_millis: DEFAULT_LIMIT_IDLE_MILLIS,
            next_send_at: now,
            last_sent: now,
            last_received: now,
            heard: false,
            probe_sent: None,
            pending_ares: None,
            queue: VecDeque::new(),
            queued_bytes: 0,
            want_writable: false,
            events: VecDeque::new(),
            config,
        })
    }

    /// This connection's public key: our address on the server, the `from` peers see.
    pub fn pub_key(&self) -> &PubKey {
        &self.pub_key
    }

    /// The WebSocket URL to open on `server_url` (see [`connect_url`]); also our peer URL.
    pub fn url(&self, server_url: &str) -> String {
        connect_url(server_url, &self.pub_key)
    }

    /// True between `srdy` and close.
    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    /// True once closed (for any [`CloseReason`]); the driver should drop the WebSocket.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Bytes (whole messages) waiting in the send queue.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// The server's current rate limit: ns of budget per byte sent (`lbrt`, §3.2.5; default
    /// [`DEFAULT_LIMIT_BYTE_NANOS`]; 0 = unlimited). Pacing adds [`RATE_MARGIN_PERCENT`].
    pub fn limit_byte_nanos(&self) -> u64 {
        self.limit_byte_nanos
    }

    /// The server's idle limit in ms (`lidl`, §3.2.4; default [`DEFAULT_LIMIT_IDLE_MILLIS`]).
    pub fn limit_idle_millis(&self) -> u64 {
        self.limit_idle_millis
    }

    /// Ms of silence after which we send `keep`: half the idle limit, at least
    /// [`MIN_KEEPALIVE_MILLIS`] (half, like the upstream client, so one late timer or a slow
    /// network never lets the server's idle limit pass).
    pub fn keepalive_interval_ms(&self) -> u64 {
        (self.limit_idle_millis / 2).max(MIN_KEEPALIVE_MILLIS)
    }

    /// µs of pacing that sending `len` bytes costs at the current `lbrt` plus margin, rounded
    /// up: `ceil(len × lbrt × (100 + 10) / 100 / 1000)` (§3.2.5).
    pub fn pacing_cost_us(&self, len: usize) -> u64 {
        let ns_x100 = (len as u64)
            .saturating_mul(self.limit_byte_nanos)
            .saturating_mul(100 + RATE_MARGIN_PERCENT);
        ns_x100.div_ceil(100_000)
    }

    /// Feed one inbound WebSocket binary message (the whole sbd message, header included).
    ///
    /// Commands update limits and the handshake, forwards become [`SbdEvent::Message`],
    /// unknown commands (and `ares`/`keep`, which only clients send) are ignored (§3.2.6).
    /// A message under 32 or over 20 000 bytes, a known command of the wrong length, a
    /// forward before `srdy`, a repeated `areq` or a `srdy` before `areq` closes the
    /// connection with [`CloseReason::Protocol`]. Ignored once closed. Never panics.
    pub fn handle_message(&mut self, msg: impl Into<Bytes>) {
        if self.state == State::Closed {
            return;
        }
        let msg: Bytes = msg.into();
        let len = msg.len();
        self.heard = true;
        if len < HEADER_BYTES {
            return self.fail(ProtocolError::Short { len });
        }
        if len > MAX_MESSAGE_BYTES {
            return self.fail(ProtocolError::Oversize { len });
        }
        let (header, body) = msg.split_at(HEADER_BYTES);
        if header[..CMD_PREFIX_BYTES].iter().any(|b| *b != 0) {
            if self.state != State::Ready {
                return self.fail(ProtocolError::ForwardBeforeReady);
            }
            let mut from = [0u8; PUB_KEY_BYTES];
            from.copy_from_slice(header);
            if from == self.pub_key.0 {
                // Our probe, back: it has done its work by arriving.
                return;
            }
            let payload = msg.slice(HEADER_BYTES..);
            self.events.push_back(SbdEvent::Message {
                from: PubKey(from),
                payload,
            });
            return;
        }
        let mut cmd = [0u8; 4];
        cmd.copy_from_slice(&header[CMD_PREFIX_BYTES..]);
        match cmd {
            CMD_LBRT => match i32_body(body) {
                // A negative rate means nothing; treat it as "unlimited" like upstream's
                // saturating cast.
                Some(v) => self.limit_byte_nanos = u64::try_from(v).unwrap_or(0),
                None => self.fail_length(cmd, len),
            },
            CMD_LIDL => match i32_body(body) {
                // A non-positive idle limit means nothing; keep the one we have.
                Some(v) if v > 0 => self.limit_idle_millis = v.unsigned_abs() as u64,
                Some(_) => {}
                None => self.fail_length(cmd, len),
            },
            CMD_AREQ => {
                if body.len() != NONCE_BYTES {
                    return self.fail_length(cmd, len);
                }
                if self.state != State::AwaitAuth {
                    return self.fail(ProtocolError::RepeatedAuthRequest);
                }
                let sig = self.key.sign(body).to_bytes();
                let mut ares = command_header(CMD_ARES);
                ares.extend_from_slice(&sig);
                debug_assert_eq!(ares.len(), HEADER_BYTES + SIGNATURE_BYTES);
                self.pending_ares = Some(ares);
                self.state = State::AwaitReady;
            }
            CMD_SRDY => match self.state {
                State::AwaitAuth => self.fail(ProtocolError::ReadyBeforeAuth),
                State::AwaitReady => {
                    self.state = State::Ready;
                    self.events.push_back(SbdEvent::Ready);
                }
                // A late or repeated srdy is harmless.
                State::Ready | State::Closed => {}
            },
            // Unknown commands, and the client-only `ares`/`keep`, are ignored (§3.2.6).
            _ => {}
        }
    }

    /// Queue `payload` as a forward to `to` (§3.2.2). It goes out through
    /// [`SbdClient::poll_transmit`] after `srdy`, in order, paced by `lbrt`.
    ///
    /// # Errors
    /// [`SendError::TooLarge`] over [`MAX_PAYLOAD_BYTES`], [`SendError::CommandLikeDestination`]
    /// for a key with 28 leading zero bytes, [`SendError::Full`] when the queue would exceed
    /// [`SbdConfig::send_queue_bytes`] (back-pressure; retry after [`SbdEvent::Writable`]),
    /// [`SendError::Closed`] after close. Nothing is queued on error.
    pub fn send(&mut self, to: &PubKey, payload: &[u8]) -> Result<(), SendError> {
        if self.state == State::Closed {
            return Err(SendError::Closed);
        }
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(SendError::TooLarge {
                len: payload.len(),
                max: MAX_PAYLOAD_BYTES,
            });
        }
        if to.is_command_like() {
            return Err(SendError::CommandLikeDestination);
        }
        let len = HEADER_BYTES + payload.len();
        if self.queued_bytes > 0 && self.queued_bytes + len > self.config.send_queue_bytes {
            self.want_writable = true;
            return Err(SendError::Full {
                queued: self.queued_bytes,
                capacity: self.config.send_queue_bytes,
            });
        }
        let mut msg = Vec::with_capacity(len);
        msg.extend_from_slice(&to.0);
        msg.extend_from_slice(payload);
        self.queue.push_back(msg);
        self.queued_bytes += len;
        Ok(())
    }

    /// Close the connection with `reason`: the app's own close ([`CloseReason::Local`]), or the
    /// driver reporting that the WebSocket failed or closed ([`CloseReason::Transport`]) or
    /// delivered a text message ([`ProtocolError::TextMessage`]). Drops the queue and emits
    /// [`SbdEvent::Closed`] once; later calls do nothing.
    pub fn close(&mut self, reason: CloseReason) {
        if self.state == State::Closed {
            return;
        }
        self.state = State::Closed;
        self.pending_ares = None;
        self.queue.clear();
        self.queued_bytes = 0;
        self.want_writable = false;
        self.events.push_back(SbdEvent::Closed { reason });
    }

    /// Check the timers at `now`: closes with [`CloseReason::HandshakeTimeout`] if `srdy` is
    /// overdue, with [`CloseReason::Unresponsive`] if a probe went unanswered for
    /// [`SbdConfig::probe_timeout`]. Keepalives, probes and paced sends come out of
    /// [`SbdClient::poll_transmit`].
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.date_heard(now);
        if matches!(self.state, State::AwaitAuth | State::AwaitReady)
            && now >= self.handshake_deadline
        {
            self.close(CloseReason::HandshakeTimeout);
        }
        if let Some(deadline) = self.probe_deadline()
            && now >= deadline
        {
            let waited_ms = self.config.probe_timeout.as_millis() as u64;
            self.close(CloseReason::Unresponsive { waited_ms });
        }
    }

    /// The next WebSocket binary message to send at `now`, if any; call until `None` after
    /// every input. In order of priority: the `ares` answer; after `srdy`, the next queued
    /// forward once pacing allows (`now` ≥ the previous message's time + its
    /// [`pacing_cost_us`](Self::pacing_cost_us)); a 32-byte `keep` when nothing was sent for
    /// [`keepalive_interval_ms`](Self::keepalive_interval_ms). A 32-byte probe (a forward to
    /// our own key) goes ahead of queued forwards once nothing was received for
    /// [`SbdConfig::probe_after`]. Every message returned counts against pacing and resets
    /// the idle clock; the driver must send it.
    pub fn poll_transmit(&mut self, now: Timestamp) -> Option<Vec<u8>> {
        if self.state == State::Closed {
            return None;
        }
        self.date_heard(now);
        if let Some(ares) = self.pending_ares.take() {
            self.account(now, ares.len());
            return Some(ares);
        }
        if self.state != State::Ready {
            return None;
        }
        if self.probe_sent.is_none() && now >= self.probe_due() {
            self.probe_sent = Some(now);
            let probe = self.pub_key.0.to_vec();
            self.account(now, probe.len());
            return Some(probe);
        }
        if now >= self.next_send_at
            && let Some(msg) = self.queue.pop_front()
        {
            self.queued_bytes -= msg.len();
            if self.want_writable && self.queued_bytes <= self.config.send_queue_bytes / 2 {
                self.want_writable = false;
                self.events.push_back(SbdEvent::Writable);
            }
            self.account(now, msg.len());
            return Some(msg);
        }
        let keep_due = self.keepalive_due();
        // `keep_due > last_sent` only fails when the clock saturates at i64::MAX; then one
        // keep per instant is all we can do, and never a loop.
        if now >= keep_due && keep_due > self.last_sent {
            let keep = command_header(CMD_KEEP);
            self.account(now, keep.len());
            return Some(keep);
        }
        None
    }

    /// The next event, if any (see [`SbdEvent`]).
    pub fn poll_event(&mut self) -> Option<SbdEvent> {
        self.events.pop_front()
    }

    /// When to call [`SbdClient::handle_timeout`] and [`SbdClient::poll_transmit`] again
    /// without other input: the handshake deadline before `srdy`; after it the earliest of the
    /// next paced send (if anything is queued), the next keepalive, and the next probe or the
    /// outstanding probe's deadline. `None` once closed.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        match self.state {
            State::Closed => None,
            State::AwaitAuth | State::AwaitReady => Some(self.handshake_deadline),
            State::Ready => {
                let probe = self.probe_deadline().unwrap_or_else(|| self.probe_due());
                let next = self.keepalive_due().min(probe);
                Some(if self.queue.is_empty() {
                    next
                } else {
                    next.min(self.next_send_at)
                })
            }
        }
    }

    /// Dates a message [`SbdClient::handle_message`] took: it answers any outstanding probe.
    fn date_heard(&mut self, now: Timestamp) {
        if self.heard {
            self.heard = false;
            self.last_received = now;
            self.probe_sent = None;
        }
    }

    /// When the next probe is due (nothing received for [`SbdConfig::probe_after`]).
    fn probe_due(&self) -> Timestamp {
        self.last_received
            .add_micros(micros(self.config.probe_after))
    }

    /// When the outstanding probe, if any, must have been answered.
    fn probe_deadline(&self) -> Option<Timestamp> {
        self.probe_sent
            .map(|sent| sent.add_micros(micros(self.config.probe_timeout)))
    }

    fn keepalive_due(&self) -> Timestamp {
        let us = self.keepalive_interval_ms().saturating_mul(1000);
        self.last_sent
            .add_micros(i64::try_from(us).unwrap_or(i64::MAX))
    }

    fn account(&mut self, now: Timestamp, len: usize) {
        let cost = i64::try_from(self.pacing_cost_us(len)).unwrap_or(i64::MAX);
        self.next_send_at = self.next_send_at.max(now).add_micros(cost);
        self.last_sent = now;
    }

    fn fail(&mut self, e: ProtocolError) {
        self.close(CloseReason::Protocol(e));
    }

    fn fail_length(&mut self, cmd: [u8; 4], len: usize) {
        self.fail(ProtocolError::BadCommandLength {
            cmd: String::from_utf8_lossy(&cmd).into_owned(),
            len,
        });
    }
}

fn command_header(cmd: [u8; 4]) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER_BYTES + SIGNATURE_BYTES);
    v.extend_from_slice(&[0u8; CMD_PREFIX_BYTES]);
    v.extend_from_slice(&cmd);
    v
}

/// The i32 big-endian body of `lbrt`/`lidl`, or `None` if the body is not exactly 4 bytes.
fn i32_body(body: &[u8]) -> Option<i32> {
    <[u8; 4]>::try_from(body).ok().map(i32::from_be_bytes)
}

#[cfg(test)]
mod tests;
