//! Connection policy, sans-IO: which connections exist, over which path, and when they
//! start, fall back to the relay, and close.
//!
//! [`ConnManager`] holds one entry per remote peer (keyed by peer URL) and answers every
//! input — an app's wish to reach a peer ([`ConnManager::connect`]), a signal frame from a
//! peer ([`ConnManager::handle_signal`]), progress reported by the platform glue, the clock
//! ([`ConnManager::handle_timeout`]) — by queueing [`Action`]s for the glue to carry out. It
//! owns no peer connection, socket or timer; `webrtc.rs` does the browser side.
//!
//! # Driving it
//!
//! The convention of every sans-IO machine here (like [`crate::net::sbd`] and
//! [`crate::core::space`], after quinn-proto): inputs in, outputs polled. Each input method
//! queues its actions and returns nothing ([`ConnManager::connect`] returns only the
//! connection id); after every input the glue drains [`ConnManager::poll_output`] and
//! carries the actions out in that order. [`ConnManager::poll_timeout`] says when to call
//! [`ConnManager::handle_timeout`].
//!
//! # Lifecycle of one connection
//!
//! ```text
//!   Negotiating ──path_open──▶ Handshake ──both preflights──▶ Open ──▶ closed
//!   (WebRTC offer/answer/ICE)  (preflights in flight)         (module traffic)
//!        │ timeout (initiator) / NoRtc / relayed data
//!        └──────────────▶ Handshake over the relay
//! ```
//!
//! # The handshake, as states ([`Handshake`])
//!
//! The glue only executes: [`Action::SendPreflight`] (send our preflight as the first
//! message on the current path, then report [`ConnManager::preflight_sent`]),
//! [`Action::Signal`] (our offer or answer, then the ICE candidates that were held back until
//! it went out: [`ConnManager::local_description`], [`ConnManager::local_candidate`]),
//! [`Action::Connected`] (mark the connection ready, report it with the peer's verified agent
//! infos), [`Action::Deliver`] (a decoded message for the space), [`Action::Disconnected`]
//! (report the end of a connection that had been reported connected). Every whole message
//! the peer sends goes through [`ConnManager::handle_message`], which decodes it ONCE:
//! - the peer's first message must be its PREFLIGHT, and only the first (else the connection
//!   closes with a protocol violation); its infos are verified ([`crate::net::admission`]);
//! - the initiator's preflight is asked for when its path is up (data channel open, relay
//!   start or fallback), the acceptor's when the initiator's has arrived, each at most once;
//! - the connection opens when we have sent ours and received theirs, in either order;
//! - NOTIFY and MODULE messages before the peer's preflight close the connection; after it
//!   they are delivered decoded. Whether the sender is admitted is not decided here: the one
//!   admission rule is the space's ([`crate::core::peer_store::PeerStore::admits`]);
//! - DISCONNECT ends the connection with the peer's reason; UNSPECIFIED (or an unknown type)
//!   and MODULE messages for modules fennec does not run are dropped and counted (Kitsune2
//!   ignores both);
//! - a handshake not finished within [`NetConfig::preflight_timeout`] of the path coming
//!   up closes (Kitsune2's iroh transport: 10 s).
//!
//! - The *initiator* picks a random [`ConnId`] and starts over WebRTC (or the relay, when
//!   WebRTC is disabled or the peer connection budget is spent). If the data channel is not
//!   open after [`NetConfig::webrtc_connect_timeout`], it falls back to the relay for the
//!   rest of the connection (tx5 did the same after `webrtc_connect_timeout_s`).
//! - Each side's first message is its PREFLIGHT; the initiator sends first, the acceptor
//!   answers after it received the initiator's, and nobody sends module traffic before it
//!   has both sent and received a preflight. So a fallback never loses data: until the
//!   initiator's data channel is open nothing has been sent on it by anyone.
//! - The acceptor follows the initiator: relayed data for a connection that is still
//!   negotiating moves it to the relay.
//!
//! # Glare (both peers connect at once)
//!
//! Deterministic tie-break by peer URL. When an offer (or relayed data) for a new
//! connection arrives while our own initiated connection to that peer has not finished its
//! handshake, the connection started by the peer with the lexicographically **smaller** peer
//! URL wins: if that is us we ignore the peer's attempt (it will accept ours when our offer
//! arrives), otherwise we abandon ours ([`Action::Close`] without notice; the glue retries
//! pending sends on the winning connection) and accept theirs. A new connection from a
//! peer whose connection with us had already finished its handshake means the peer dropped
//! it: it replaces ours.
//!
//! The winner cannot tell a true glare from a lost opening: its offer or relayed preflight
//! may have gone out while the peer was not yet on the signal server (sbd drops frames for
//! absent peers), so the peer never learns of it and waits for its own attempt, which the
//! winner ignores; both would stall until their timeouts (10–15 s). So a winner that has
//! heard nothing on its attempt [`NetConfig::glare_repair_after`] after the peer's arrived
//! restarts it under a new id ([`ConnStats::glare_restarted`]): the peer, still waiting on
//! its own, yields to that as usual. In a true glare the peer answers ours within a round
//! trip, well before then, and nothing restarts. An attempt already that old when the
//! peer's arrives restarts at once: the two attempts of a true glare begin within a round
//! trip of each other.
//!
//! # Limits
//!
//! - At most [`NetConfig::max_connections`] entries (default 32); a new one (ours or the
//!   peer's) closes the least recently used.
//! - Open connections without traffic for [`NetConfig::idle_timeout`] close.
//! - At most [`NetConfig::peer_connection_budget`] `RTCPeerConnection`s are ever created
//!   (default 400, below Chromium's limit of 500 per page lifetime, closed ones included:
//!   `libp2p/js-libp2p#2591`, chromium 41378764), and at most
//!   [`NetConfig::peer_connections_per_peer`] with any one peer (default 8: a peer that keeps
//!   re-offering cannot spend the budget). Beyond either, connections are relayed. The
//!   browser glue also caps all transports of one page together
//!   ([`ConnManager::set_page_budget_left`]).

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;

use crate::bounded::BoundedSet;
use crate::hash::{HashMap, HashSet};
use crate::model::agent::AgentInfoSigned;
use crate::model::config::{ConfigError, at_least_one, positive};
use crate::model::time::{Timestamp, micros};
use crate::model::url::Url;
use crate::net::admission::{AdmissionError, decode_preflight};
use crate::net::frame::{Candidate, ConnId, SignalFrame};
use crate::sort;
use crate::wire::{MAX_FRAME_BYTES, WireError, WireMessage, decode_frame};

/// Most local ICE candidates held back per connection until its offer or answer went out
/// (browsers gather a handful per interface); later ones are dropped and counted
/// ([`ConnStats::candidates_dropped`]).
pub const MAX_PENDING_CANDIDATES: usize = 64;

/// Largest datagram ([`ConnManager::handle_datagram`]), bytes: 16 KiB, far above a SWIM
/// packet (`MembershipConfig::max_packet_bytes`, 1 200 by default) and the data-channel
/// message size every browser accepts (RFC 8831 §6.6 leaves the limit to implementations;
/// 16 KiB is the interoperable floor). Larger frames go on the reliable lane.
pub const MAX_DATAGRAM_BYTES: usize = 16 * 1024;

/// A STUN or TURN server for ICE (`RTCIceServer`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IceServer {
    /// `stun:host:port`, `turn:host:port?transport=udp`, … (one server, several URLs).
    pub urls: Vec<String>,
    /// TURN user name.
    pub username: Option<String>,
    /// TURN password.
    pub credential: Option<String>,
}

/// Tunables of the network layer. Sizes in bytes, times as [`Duration`]s. Checked by
/// [`NetConfig::validate`] ([`ConnManager::new`] refuses an invalid one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    /// ICE servers. Default none: host candidates only, enough on one machine or a LAN.
    /// Across NATs configure STUN, and TURN for the peers STUN cannot connect (iroh#3250
    /// measured 20 % cross-ISP success without TURN) — or rely on the relay fallback.
    pub ice_servers: Vec<IceServer>,
    /// Use WebRTC at all. Default true; false relays every connection through the signal
    /// server (and answers peers' offers with `NoRtc`).
    pub webrtc: bool,
    /// How long the initiator waits for its data channel to open before falling back to the
    /// relay. Default 15 s (loopback and LAN connect in well under a second; ICE with STUN
    /// takes a few seconds; tx5 waited 45 s). At least 1 µs.
    pub webrtc_connect_timeout: Duration,
    /// How long each side waits, once the path is up, for the peer's preflight. Default
    /// 10 s (Kitsune2's iroh transport: preflight must be answered within 10 s). At least
    /// 1 µs.
    pub preflight_timeout: Duration,
    /// Most simultaneous connections (any phase). Default 32 (y-webrtc 20–34, WebTorrent and
    /// GUN 55 in the wild). At least 1.
    pub max_connections: usize,
    /// Open connections with no message sent or received for this long are closed. Default
    /// 60 s (Kitsune2's iroh transport: QUIC idle timeout 60 s). At least 1 µs.
    pub idle_timeout: Duration,
    /// Most `RTCPeerConnection`s ever created by this transport, closed ones included.
    /// Default 400: Chromium refuses the 501st of a page's lifetime.
    pub peer_connection_budget: u32,
    /// Most `RTCPeerConnection`s ever created with one peer (ours and its offers). Default 8.
    pub peer_connections_per_peer: u32,
    /// Largest message (one encoded `K2Proto`) sent or accepted. Default
    /// [`MAX_FRAME_BYTES`] (4 MiB); the receive side closes a connection that announces more.
    /// At least 1, at most `u32::MAX` (the most a first chunk can announce).
    pub max_message_bytes: usize,
    /// Message bytes per data-channel message (chunk payload). Default 16 384: the size
    /// every browser accepts (interoperable; Chromium measured the same throughput at 16, 64
    /// and 256 KiB). Relayed chunks are sized to the signal path's limit instead. At least 1,
    /// at most `max_message_bytes`.
    pub chunk_bytes: usize,
    /// The sender waits while the data channel's `bufferedAmount` is above this. Default
    /// 1 MiB (Chromium closes the channel past ~16 MB queued).
    pub send_high_water_bytes: u32,
    /// `bufferedAmountLowThreshold`: a waiting sender resumes when the buffer drains to this.
    /// Default 256 KiB. Below `send_high_water_bytes`.
    pub send_low_water_bytes: u32,
    /// How long the glare winner waits, after the peer's competing attempt arrived, for any
    /// frame on its own attempt before it restarts that attempt under a new id (its opening
    /// was lost; see the [module docs](self#glare-both-peers-connect-at-once)). Default 3 s:
    /// many relay round trips, so a peer slowly answering a true glare is not restarted,
    /// and far below the 10–15 s the lost opening would otherwise cost. At least 1 µs.
    pub glare_repair_after: Duration,
    /// Largest preflight payload (the JSON list of agent infos). Default 65 536.
    pub max_preflight_bytes: usize,
    /// Most agent infos in one preflight. Default 32.
    pub max_preflight_agents: usize,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            ice_servers: Vec::new(),
            webrtc: true,
            webrtc_connect_timeout: Duration::from_secs(15),
            preflight_timeout: Duration::from_secs(10),
            glare_repair_after: Duration::from_secs(3),
            max_connections: 32,
            idle_timeout: Duration::from_secs(60),
            peer_connection_budget: 400,
            peer_connections_per_peer: 8,
            max_message_bytes: MAX_FRAME_BYTES,
            chunk_bytes: 16 * 1024,
            send_high_water_bytes: 1024 * 1024,
            send_low_water_bytes: 256 * 1024,
            max_preflight_bytes: 64 * 1024,
            max_preflight_agents: 32,
        }
    }
}

impl NetConfig {
    /// Checks every field the network layer cannot run with.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first bad field (e.g. `net.chunk_bytes`): a timeout under
    /// 1 µs, `max_connections` 0, `max_message_bytes` 0 or over `u32::MAX`, `chunk_bytes` 0 or
    /// over `max_message_bytes`, or `send_low_water_bytes` not below `send_high_water_bytes`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive("net.webrtc_connect_timeout", self.webrtc_connect_timeout)?;
        positive("net.preflight_timeout", self.preflight_timeout)?;
        positive("net.glare_repair_after", self.glare_repair_after)?;
        positive("net.idle_timeout", self.idle_timeout)?;
        at_least_one("net.max_connections", self.max_connections as u64)?;
        at_least_one("net.max_message_bytes", self.max_message_bytes as u64)?;
        if u32::try_from(self.max_message_bytes).is_err() {
            return Err(ConfigError {
                field: "net.max_message_bytes",
                rule: "must be at most u32::MAX",
            });
        }
        at_least_one("net.chunk_bytes", self.chunk_bytes as u64)?;
        if self.chunk_bytes > self.max_message_bytes {
            return Err(ConfigError {
                field: "net.chunk_bytes",
                rule: "must be at most net.max_message_bytes",
            });
        }
        if self.send_low_water_bytes >= self.send_high_water_bytes {
            return Err(ConfigError {
                field: "net.send_low_water_bytes",
                rule: "must be below net.send_high_water_bytes",
            });
        }
        Ok(())
    }
}

/// Who started a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// We did (we offer, and send the first preflight).
    Initiator,
    /// The peer did.
    Acceptor,
}

/// How a connection's messages travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Path {
    /// One ordered, reliable WebRTC data channel.
    WebRtc,
    /// Relayed through the signal server as [`SignalFrame::Data`].
    Relay,
}

/// Where a connection is in its lifecycle (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// WebRTC offer/answer/ICE in progress; the data channel is not open.
    Negotiating,
    /// The path is up; preflights are being exchanged.
    Handshake,
    /// Both preflights exchanged: module traffic flows.
    Open,
}

/// One connection as the manager sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfo {
    /// Its id.
    pub conn: ConnId,
    /// Who started it.
    pub role: Role,
    /// Its path now.
    pub path: Path,
    /// Its phase now.
    pub phase: Phase,
    /// When this attempt began (a restart is a new attempt).
    pub started: Timestamp,
    /// Last time a message was sent or received, or the connection changed phase.
    pub last_active: Timestamp,
    /// When its current phase times out (`None` when open: then the idle rule applies).
    pub deadline: Option<Timestamp>,
    /// When our attempt restarts unless the peer is heard on it first: set when we won a
    /// glare without having heard from the peer on ours ([`NetConfig::glare_repair_after`]).
    pub glare_repair_at: Option<Timestamp>,
    /// Where its handshake is.
    pub handshake: Handshake,
}

/// Our side of the preflight exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OurPreflight {
    /// Not asked for yet.
    #[default]
    Unsent,
    /// [`Action::SendPreflight`] emitted; the glue is sending it.
    Sending,
    /// The glue reported it sent ([`ConnManager::preflight_sent`]).
    Sent,
}

/// The handshake state of one connection (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Handshake {
    /// Our preflight.
    pub ours: OurPreflight,
    /// The peer's verified agent infos, once its preflight arrived.
    pub theirs: Option<Vec<AgentInfoSigned>>,
    /// Our offer or answer went out: local ICE candidates may follow it at once.
    pub local_description_sent: bool,
    /// Local ICE candidates held back until then (at most [`MAX_PENDING_CANDIDATES`]).
    pub pending_candidates: Vec<Candidate>,
    /// The peer sent something on this connection (a signal frame or a message): it knows
    /// of it.
    pub heard: bool,
}

/// What the platform glue must do, polled in order with [`ConnManager::poll_output`].
// A transient value, moved on at once (one per message); boxing the decoded message would
// only add an allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create connection `conn` to `peer`: for [`Path::WebRtc`] an `RTCPeerConnection` (the
    /// initiator then makes and sends an offer); for [`Path::Relay`] nothing but the state
    /// (the initiator then sends its preflight through the relay).
    Start {
        /// The peer.
        peer: Url,
        /// The connection.
        conn: ConnId,
        /// Who started it.
        role: Role,
        /// The path to use.
        path: Path,
    },
    /// Hand `frame` (offer, answer, candidate, relayed data) to connection `conn`.
    Route {
        /// The peer.
        peer: Url,
        /// The connection.
        conn: ConnId,
        /// The frame.
        frame: SignalFrame,
    },
    /// Give up WebRTC for `conn`: close its peer connection and carry on over the relay (an
    /// initiator sends its preflight through the relay now).
    FallBack {
        /// The peer.
        peer: Url,
        /// The connection.
        conn: ConnId,
    },
    /// Close `conn` and fail whatever waits on it. The manager has already forgotten it.
    Close {
        /// The peer.
        peer: Url,
        /// The connection.
        conn: ConnId,
        /// Why (for the `Disconnected` event and the peer).
        reason: String,
        /// Send the peer a [`SignalFrame::Close`] with the reason.
        notify: bool,
    },
    /// Send `frame` to `peer` through the signal path.
    Reply {
        /// The peer.
        peer: Url,
        /// The frame.
        frame: SignalFrame,
    },
    /// Send `frame` (our offer, answer or an ICE candidate) on `conn`'s ordered signal queue.
    Signal {
        /// The peer.
        peer: Url,
        /// The connection.
        conn: ConnId,
        /// The frame.
        frame: SignalFrame,
    },
    /// Send our preflight as `conn`'s first message on its current path, then call
    /// [`ConnManager::preflight_sent`] (or [`ConnManager::fail`] if it could not be sent).
    SendPreflight {
        /// The peer.
        peer: Url,
        /// The connection.
        conn: ConnId,
    },
    /// Both preflights are exchanged: `conn` carries module traffic now. Report it with the
    /// peer's verified agent infos (the space learns them at once).
    Connected {
        /// The peer.
        peer: Url,
        /// The connection.
        conn: ConnId,
        /// Its path.
        path: Path,
        /// The agent infos of the peer's preflight that verified and name its URL.
        agents: Vec<AgentInfoSigned>,
    },
    /// A decoded NOTIFY or MODULE message from `peer` for the space (which applies the
    /// admission rule).
    Deliver {
        /// The sender.
        peer: Url,
        /// The connection.
        conn: ConnId,
        /// The message.
        msg: WireMessage,
        /// Its encoded size, bytes (for accounting).
        len: usize,
    },
    /// A connection that had been reported [`Action::Connected`] is gone (follows its
    /// [`Action::Close`]).
    Disconnected {
        /// The peer.
        peer: Url,
        /// Why.
        reason: String,
    },
}

/// Why [`ConnManager::connect`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnError {
    /// The peer URL is our own.
    #[error("cannot connect to ourselves")]
    SelfConnect,
    /// The URL names a server, not a peer (no peer id path segment).
    #[error("{0} is not a peer URL (no peer id)")]
    NotAPeer(Url),
    /// Our page is being discarded and this peer was told so ([`ConnManager::depart`]).
    #[error("the page is closing and the peer was told: no new connection")]
    Departed,
    /// The peer's page closed (its DISCONNECT said [`PAGE_CLOSED`]): its URL went with it.
    #[error("{0} closed its page: its URL is gone")]
    PageClosed(Url),
}

/// The DISCONNECT reason of connections closed because the page is being discarded
/// (`pagehide` with `persisted` false: closed tab, navigation away without the back-forward
/// cache). A page's peer URL is its own sbd key, so it never comes back; a reloaded page has
/// a new one.
pub const PAGE_CLOSED: &str = "page closed";

/// How many peers whose page closed a [`ConnManager`] remembers, to open no connection to
/// them ([`ConnError::PageClosed`]); the oldest is forgotten first.
pub const CLOSED_PAGES_REMEMBERED: usize = 256;

/// Counters of what the manager did; they only grow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnStats {
    /// `RTCPeerConnection`s created so far (see [`NetConfig::peer_connection_budget`]).
    pub peer_connections_created: u32,
    /// Connections started or accepted on the relay because WebRTC was disabled or the
    /// budget was spent.
    pub relay_only: u64,
    /// Connections moved from WebRTC to the relay (timeout, `NoRtc`, peer's fallback).
    pub fallbacks: u64,
    /// Glare: we kept our attempt and ignored the peer's.
    pub glare_won: u64,
    /// Glare: we abandoned our attempt for the peer's.
    pub glare_yielded: u64,
    /// Glare: we won, but the peer never showed it knew of our attempt (its opening was
    /// lost), so we restarted it under a new id.
    pub glare_restarted: u64,
    /// Connections replaced by a newer one from the same peer.
    pub replaced: u64,
    /// Connections closed to make room (least recently used).
    pub evicted: u64,
    /// Open connections closed for idleness.
    pub idle_closed: u64,
    /// Connections closed because a phase timed out.
    pub timed_out: u64,
    /// Signal frames for unknown, old or mismatched connections, ignored.
    pub stale_frames: u64,
    /// Messages delivered to the space ([`Action::Deliver`]).
    pub messages_received: u64,
    /// UNSPECIFIED/unknown-type messages dropped.
    pub dropped_unspecified: u64,
    /// MODULE messages for modules fennec does not run, dropped.
    pub dropped_unknown_module: u64,
    /// Preflight agent infos left out (bad signature, expired, tombstone, other URL).
    pub preflight_agents_rejected: u64,
    /// Connections closed because the peer broke the protocol (malformed chunk or frame,
    /// no preflight first, a repeated preflight, a text data-channel message, …).
    pub protocol_closes: u64,
    /// Local ICE candidates dropped beyond [`MAX_PENDING_CANDIDATES`].
    pub candidates_dropped: u64,
    /// Membership datagrams delivered ([`ConnManager::handle_datagram`]).
    pub datagrams_received: u64,
    /// Datagrams dropped because they arrived before the handshake finished.
    pub datagrams_early: u64,
}

/// The connection table and its rules (see the [module docs](self)).
#[derive(Debug)]
pub struct ConnManager {
    local: Url,
    config: NetConfig,
    conns: HashMap<Url, ConnInfo>,
    stats: ConnStats,
    /// Peer connections created per peer (at most `peer_connection_budget` entries).
    per_peer: HashMap<Url, u32>,
    /// What the platform says is left of a budget shared with other transports.
    page_left: u32,
    /// Actions not yet polled ([`ConnManager::poll_output`]), oldest first.
    out: VecDeque<Action>,
    /// Set by [`ConnManager::depart`]: the peers told our page closed (`Some`, maybe
    /// empty); peers' new connections are refused, ours to these peers too.
    departed: Option<HashSet<Url>>,
    /// Peers whose page closed ([`PAGE_CLOSED`]). A fetch answer or gossip message that was
    /// under way when one left would otherwise open a new connection to a URL nobody holds,
    /// which then waits out its connect timeout (seen after a tab reloaded mid-sync).
    closed_pages: BoundedSet<Url>,
}

impl ConnManager {
    /// A manager for the peer whose own URL is `local`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the bad field if `config` fails [`NetConfig::validate`].
    pub fn new(local: Url, config: NetConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(ConnManager {
            local,
            config,
            conns: HashMap::default(),
            stats: ConnStats::default(),
            per_peer: HashMap::default(),
            page_left: u32::MAX,
            out: VecDeque::new(),
            departed: None,
            closed_pages: BoundedSet::new(CLOSED_PAGES_REMEMBERED),
        })
    }

    /// The next action for the glue to carry out, in the order they arose, if any. Drain
    /// after every input.
    pub fn poll_output(&mut self) -> Option<Action> {
        self.out.pop_front()
    }

    fn push(&mut self, action: Action) {
        self.out.push_back(action);
    }

    /// The configuration.
    pub fn config(&self) -> &NetConfig {
        &self.config
    }

    /// Our own peer URL.
    pub fn local(&self) -> &Url {
        &self.local
    }

    /// The connection to `peer`, if any.
    pub fn get(&self, peer: &Url) -> Option<&ConnInfo> {
        self.conns.get(peer)
    }

    /// All connections.
    pub fn iter(&self) -> impl Iterator<Item = (&Url, &ConnInfo)> {
        self.conns.iter()
    }

    /// Number of connections (any phase).
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Whether there are no connections.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// The counters.
    pub fn stats(&self) -> &ConnStats {
        &self.stats
    }

    /// Peer connections that may still be created (this manager's budget, capped by the
    /// page's).
    pub fn peer_connections_left(&self) -> u32 {
        self.config
            .peer_connection_budget
            .saturating_sub(self.stats.peer_connections_created)
            .min(self.page_left)
    }

    /// Caps new peer connections by a budget shared with other transports of the same page
    /// (Chromium's limit is per page, not per transport). The platform glue sets it before
    /// each input that may start a connection.
    pub fn set_page_budget_left(&mut self, left: u32) {
        self.page_left = left;
    }

    /// We want to talk to `peer`: the existing connection (any phase) is reused, otherwise a
    /// new one is started with id `fresh` (a random number from the caller), over WebRTC if
    /// enabled and budgeted, else the relay. Returns the connection id; the actions (an
    /// eviction, then the start) are queued ([`poll_output`](Self::poll_output)).
    ///
    /// # Errors
    /// [`ConnError::SelfConnect`], [`ConnError::NotAPeer`], [`ConnError::Departed`],
    /// [`ConnError::PageClosed`].
    pub fn connect(
        &mut self,
        peer: &Url,
        fresh: ConnId,
        now: Timestamp,
    ) -> Result<ConnId, ConnError> {
        if peer == &self.local {
            return Err(ConnError::SelfConnect);
        }
        if !peer.is_peer() {
            return Err(ConnError::NotAPeer(peer.clone()));
        }
        if self
            .departed
            .as_ref()
            .is_some_and(|told| told.contains(peer))
        {
            return Err(ConnError::Departed);
        }
        if self.closed_pages.contains(peer) {
            return Err(ConnError::PageClosed(peer.clone()));
        }
        if let Some(c) = self.conns.get_mut(peer) {
            c.last_active = now;
            return Ok(c.conn);
        }
        self.make_room(now);
        let path = self.choose_path(peer);
        self.insert(peer, fresh, Role::Initiator, path, now);
        Ok(fresh)
    }

    /// A signal frame from `peer` (authenticated by the signal server). Frames for unknown
    /// or old connections are counted and ignored; a frame that starts a connection (offer,
    /// relayed data) applies the glare and capacity rules.
    pub fn handle_signal(&mut self, peer: &Url, frame: SignalFrame, now: Timestamp) {
        let id = frame.conn();
        if peer == &self.local {
            self.stats.stale_frames += 1;
            return;
        }
        self.heard(peer, id);
        if let SignalFrame::Close { reason, .. } = &frame
            && reason == PAGE_CLOSED
        {
            // Whichever connection it names: the page and its URL are gone, so a connection
            // we opened to it since (a late answer's) is dead too.
            return self.page_closed(peer);
        }
        let current = self.conns.get(peer).cloned();
        let same = current.as_ref().filter(|c| c.conn == id);
        match (&frame, same) {
            // An offer for the connection we already accepted: the glue ignores repeats.
            (SignalFrame::Offer { .. }, Some(c)) if c.role == Role::Acceptor => {
                self.route(peer, id, frame);
            }
            (SignalFrame::Answer { .. }, Some(c))
                if c.role == Role::Initiator && c.path == Path::WebRtc =>
            {
                self.route(peer, id, frame);
            }
            (SignalFrame::Candidate { .. }, Some(c)) if c.path == Path::WebRtc => {
                self.route(peer, id, frame);
            }
            (SignalFrame::NoRtc { .. }, Some(c))
                if c.role == Role::Initiator
                    && c.path == Path::WebRtc
                    && c.phase == Phase::Negotiating =>
            {
                self.fall_back(peer, now)
            }
            (SignalFrame::Close { reason, .. }, Some(_)) => {
                self.end(peer, format!("closed by peer: {reason}"), false);
            }
            (SignalFrame::Data { .. }, Some(c)) => match (c.path, c.role, c.phase) {
                (Path::Relay, _, _) => self.route(peer, id, frame),
                // The peer relays a connection we still negotiate (the acceptor has sent
                // nothing on its data channel before it has the initiator's preflight).
                (Path::WebRtc, Role::Acceptor, Phase::Negotiating | Phase::Handshake)
                | (Path::WebRtc, Role::Initiator, Phase::Negotiating) => {
                    self.fall_back(peer, now);
                    self.route(peer, id, frame);
                }
                (Path::WebRtc, _, _) => {
                    self.stats.protocol_closes += 1;
                    let why = "protocol violation: relayed data on a WebRTC connection";
                    self.end(peer, why.into(), true);
                }
            },
            (SignalFrame::Offer { .. } | SignalFrame::Data { .. }, None) => {
                self.incoming(peer, frame, current, now)
            }
            _ => self.stats.stale_frames += 1,
        }
    }

    /// A new connection `frame.conn()` from `peer` (an offer or relayed data), while our
    /// entry for `peer` is `current` (with another id) or absent.
    fn incoming(
        &mut self,
        peer: &Url,
        frame: SignalFrame,
        current: Option<ConnInfo>,
        now: Timestamp,
    ) {
        if self.departed.is_some() {
            self.stats.stale_frames += 1;
            return;
        }
        let id = frame.conn();
        match current {
            Some(c) if c.role == Role::Initiator && c.phase != Phase::Open => {
                if self.local.as_str() < peer.as_str() {
                    // Ours wins; the peer accepts it when our offer or data arrives, unless
                    // that was lost (then we restart it; see the module docs).
                    self.stats.glare_won += 1;
                    self.watch_glare(peer, now);
                    return;
                }
                self.stats.glare_yielded += 1;
                let why = "superseded by the peer's simultaneous connection";
                self.end(peer, why.into(), false);
            }
            Some(_) => {
                self.stats.replaced += 1;
                let why = "replaced by a new connection from the peer";
                self.end(peer, why.into(), false);
            }
            None => self.make_room(now),
        }
        let path = match frame {
            SignalFrame::Data { .. } => {
                self.stats.relay_only += 1;
                Path::Relay
            }
            _ => self.choose_path(peer),
        };
        self.insert(peer, id, Role::Acceptor, path, now);
        if path == Path::Relay && matches!(frame, SignalFrame::Offer { .. }) {
            self.push(Action::Reply {
                peer: peer.clone(),
                frame: SignalFrame::NoRtc { conn: id },
            });
        } else {
            self.route(peer, id, frame);
        }
    }

    /// The peer sent something on `conn`: it knows of our attempt, so a glare repair is off.
    fn heard(&mut self, peer: &Url, conn: ConnId) {
        if let Some(c) = self.matching(peer, conn) {
            c.handshake.heard = true;
            c.glare_repair_at = None;
        }
    }

    /// We won a glare: unless the peer was heard on our attempt, restart it if that stays
    /// so for [`NetConfig::glare_repair_after`], or at once if the attempt is already that
    /// old: in a true glare the peer starts its own within a round trip of ours, so an
    /// attempt unanswered for that long went out while the peer was away (a tab asleep that
    /// just reconnected to the signal server; seen waiting the whole repair time: 4.0–4.7 s
    /// to meet again instead of ~0.9 s).
    fn watch_glare(&mut self, peer: &Url, now: Timestamp) {
        let at = self.after(now, self.config.glare_repair_after);
        let wait = micros(self.config.glare_repair_after);
        let Some(c) = self.conns.get_mut(peer) else {
            return;
        };
        if c.handshake.heard || c.glare_repair_at.is_some() {
            return;
        }
        if now.micros_since(c.started) >= wait {
            self.restart_attempt(peer, now);
        } else {
            c.glare_repair_at = at;
        }
    }

    /// Restarts our attempt to `peer` under a new id: its opening was lost, the peer waits
    /// on its own attempt and yields to the new one as usual.
    fn restart_attempt(&mut self, peer: &Url, now: Timestamp) {
        let Some(old) = self.conns.get(peer).map(|c| c.conn) else {
            return;
        };
        self.stats.glare_restarted += 1;
        let why = "restarted: the peer never heard of this attempt";
        self.end(peer, why.into(), true);
        let path = self.choose_path(peer);
        self.insert(peer, restart_id(old), Role::Initiator, path, now);
    }

    fn choose_path(&mut self, peer: &Url) -> Path {
        let with_peer = self.per_peer.get(peer).copied().unwrap_or(0);
        if self.config.webrtc
            && self.peer_connections_left() > 0
            && with_peer < self.config.peer_connections_per_peer
        {
            self.stats.peer_connections_created += 1;
            self.page_left = self.page_left.saturating_sub(1);
            self.per_peer.insert(peer.clone(), with_peer + 1);
            Path::WebRtc
        } else {
            self.stats.relay_only += 1;
            Path::Relay
        }
    }

    fn insert(&mut self, peer: &Url, conn: ConnId, role: Role, path: Path, now: Timestamp) {
        let (phase, deadline) = match (path, role) {
            (Path::Relay, _) => (
                Phase::Handshake,
                self.after(now, self.config.preflight_timeout),
            ),
            (Path::WebRtc, Role::Initiator) => (
                Phase::Negotiating,
                self.after(now, self.config.webrtc_connect_timeout),
            ),
            // The acceptor waits for the initiator's data channel or its fallback.
            (Path::WebRtc, Role::Acceptor) => (
                Phase::Negotiating,
                self.after(
                    now,
                    self.config
                        .webrtc_connect_timeout
                        .saturating_add(self.config.preflight_timeout),
                ),
            ),
        };
        self.conns.insert(
            peer.clone(),
            ConnInfo {
                conn,
                role,
                path,
                phase,
                started: now,
                last_active: now,
                deadline,
                glare_repair_at: None,
                handshake: Handshake::default(),
            },
        );
        self.push(Action::Start {
            peer: peer.clone(),
            conn,
            role,
            path,
        });
        if path == Path::Relay && role == Role::Initiator {
            self.ask_preflight(peer);
        }
    }

    fn after(&self, now: Timestamp, d: Duration) -> Option<Timestamp> {
        Some(now.add_micros(micros(d)))
    }

    fn route(&mut self, peer: &Url, conn: ConnId, frame: SignalFrame) {
        self.push(Action::Route {
            peer: peer.clone(),
            conn,
            frame,
        });
    }

    /// Moves the entry of `peer` to the relay (caller checked it is WebRTC and not open);
    /// an initiator then sends its preflight there.
    fn fall_back(&mut self, peer: &Url, now: Timestamp) {
        self.stats.fallbacks += 1;
        let deadline = self.after(now, self.config.preflight_timeout);
        let Some(c) = self.conns.get_mut(peer) else {
            return;
        };
        c.path = Path::Relay;
        c.phase = Phase::Handshake;
        c.deadline = deadline;
        c.last_active = now;
        c.handshake.pending_candidates.clear();
        let (conn, role) = (c.conn, c.role);
        self.push(Action::FallBack {
            peer: peer.clone(),
            conn,
        });
        if role == Role::Initiator {
            self.ask_preflight(peer);
        }
    }

    /// Queues [`Action::SendPreflight`] for `peer`'s connection, once.
    fn ask_preflight(&mut self, peer: &Url) {
        let Some(c) = self.conns.get_mut(peer) else {
            return;
        };
        if c.handshake.ours != OurPreflight::Unsent {
            return;
        }
        c.handshake.ours = OurPreflight::Sending;
        let conn = c.conn;
        self.push(Action::SendPreflight {
            peer: peer.clone(),
            conn,
        });
    }

    /// Forgets `peer`'s connection: queues its [`Action::Close`], and
    /// [`Action::Disconnected`] if it had been reported connected.
    fn end(&mut self, peer: &Url, reason: String, notify: bool) {
        let Some(c) = self.conns.remove(peer) else {
            return;
        };
        self.push(Action::Close {
            peer: peer.clone(),
            conn: c.conn,
            reason: reason.clone(),
            notify,
        });
        if c.phase == Phase::Open {
            self.push(Action::Disconnected {
                peer: peer.clone(),
                reason,
            });
        }
    }

    /// Closes the least recently used connection if the table is full.
    fn make_room(&mut self, _now: Timestamp) {
        while self.conns.len() >= self.config.max_connections {
            let Some(lru) = self
                .conns
                .iter()
                .min_by(|a, b| {
                    (a.1.last_active, a.0.as_str()).cmp(&(b.1.last_active, b.0.as_str()))
                })
                .map(|(u, _)| u.clone())
            else {
                break;
            };
            self.stats.evicted += 1;
            let why = "connection limit: closed the least recently used";
            self.end(&lru, why.into(), true);
        }
    }

    fn matching(&mut self, peer: &Url, conn: ConnId) -> Option<&mut ConnInfo> {
        self.conns.get_mut(peer).filter(|c| c.conn == conn)
    }

    /// The data channel of `conn` opened: the handshake starts (an initiator sends its
    /// preflight now). Nothing for an unknown or old connection, or one on the relay.
    pub fn path_open(&mut self, peer: &Url, conn: ConnId, now: Timestamp) {
        let deadline = self.after(now, self.config.preflight_timeout);
        let Some(c) = self.matching(peer, conn) else {
            return;
        };
        if c.path != Path::WebRtc || c.phase != Phase::Negotiating {
            return;
        }
        c.phase = Phase::Handshake;
        c.deadline = deadline;
        c.last_active = now;
        if c.role == Role::Initiator {
            self.ask_preflight(peer);
        }
    }

    /// Our preflight on `conn` was handed to its path ([`Action::SendPreflight`] done): the
    /// connection opens if the peer's has arrived.
    pub fn preflight_sent(&mut self, peer: &Url, conn: ConnId, now: Timestamp) {
        if let Some(c) = self.matching(peer, conn)
            && c.handshake.ours == OurPreflight::Sending
        {
            c.handshake.ours = OurPreflight::Sent;
            self.maybe_open(peer, now);
        }
    }

    /// Our offer or answer for `conn` is ready: send it, then the candidates held back.
    pub fn local_description(&mut self, peer: &Url, conn: ConnId, frame: SignalFrame) {
        let Some(c) = self.matching(peer, conn) else {
            return;
        };
        c.handshake.local_description_sent = true;
        let held = std::mem::take(&mut c.handshake.pending_candidates);
        let frames = std::iter::once(frame).chain(
            held.into_iter()
                .map(|candidate| SignalFrame::Candidate { conn, candidate }),
        );
        for frame in frames {
            self.push(Action::Signal {
                peer: peer.clone(),
                conn,
                frame,
            });
        }
    }

    /// The browser gathered a local ICE candidate for `conn`: sent at once if our offer or
    /// answer went out, else held back (at most [`MAX_PENDING_CANDIDATES`]).
    pub fn local_candidate(&mut self, peer: &Url, conn: ConnId, candidate: Candidate) {
        let Some(c) = self.matching(peer, conn) else {
            return;
        };
        if c.path != Path::WebRtc {
            return;
        }
        if c.handshake.local_description_sent {
            self.push(Action::Signal {
                peer: peer.clone(),
                conn,
                frame: SignalFrame::Candidate { conn, candidate },
            });
        } else if c.handshake.pending_candidates.len() < MAX_PENDING_CANDIDATES {
            c.handshake.pending_candidates.push(candidate);
        } else {
            self.stats.candidates_dropped += 1;
        }
    }

    /// `peer` said its page closed ([`PAGE_CLOSED`], in its DISCONNECT or in the relayed
    /// close notice that goes with it; whichever arrives first): its connection ends and its
    /// URL, which died with the page, is never connected to again.
    fn page_closed(&mut self, peer: &Url) {
        self.closed_pages.insert(peer.clone());
        self.end(peer, format!("closed by peer: {PAGE_CLOSED}"), false);
    }

    /// One whole message (a reassembled `K2Proto`) from `peer` on `conn`, decoded once and
    /// judged by the handshake rules (see the [module docs](self)).
    pub fn handle_message(&mut self, peer: &Url, conn: ConnId, msg: Bytes, now: Timestamp) {
        let max = self.config.max_message_bytes;
        self.heard(peer, conn);
        let Some(c) = self.matching(peer, conn) else {
            self.stats.stale_frames += 1;
            return;
        };
        c.last_active = now;
        let got_preflight = c.handshake.theirs.is_some();
        let len = msg.len();
        let decoded = match decode_frame(msg, max) {
            Ok(m) => m,
            Err(WireError::UnknownModule(_)) if got_preflight => {
                self.stats.dropped_unknown_module += 1;
                return;
            }
            Err(e) => return self.violation(peer, conn, &AdmissionError::from(e).to_string()),
        };
        if !got_preflight {
            let WireMessage::Preflight(data) = decoded else {
                let e = AdmissionError::ExpectedPreflight(kind_name(&decoded));
                return self.violation(peer, conn, &e.to_string());
            };
            let (agents, rejected) = match decode_preflight(&data, peer, now, &self.config) {
                Ok(r) => r,
                Err(e) => return self.violation(peer, conn, &e.to_string()),
            };
            self.stats.preflight_agents_rejected += rejected as u64;
            let Some(c) = self.matching(peer, conn) else {
                return;
            };
            c.handshake.theirs = Some(agents);
            // A message on a data channel whose `open` we have not seen: it is open.
            if c.phase == Phase::Negotiating {
                c.phase = Phase::Handshake;
            }
            self.ask_preflight(peer);
            self.maybe_open(peer, now);
            return;
        }
        match decoded {
            WireMessage::Preflight(_) => {
                self.violation(peer, conn, &AdmissionError::RepeatedPreflight.to_string());
            }
            WireMessage::Disconnect(reason) if reason == PAGE_CLOSED => self.page_closed(peer),
            WireMessage::Disconnect(reason) => {
                self.end(peer, format!("closed by peer: {reason}"), false);
            }
            WireMessage::Unspecified { .. } => self.stats.dropped_unspecified += 1,
            msg @ (WireMessage::Notify { .. }
            | WireMessage::Fetch { .. }
            | WireMessage::Publish { .. }
            | WireMessage::Gossip { .. }
            | WireMessage::Membership { .. }) => {
                self.stats.messages_received += 1;
                self.push(Action::Deliver {
                    peer: peer.clone(),
                    conn,
                    msg,
                    len,
                });
            }
        }
    }

    /// One datagram from `peer` on `conn`'s datagram lane (the browser's unordered,
    /// unreliable data channel): a whole `K2Proto`, unchunked, at most
    /// [`MAX_DATAGRAM_BYTES`]. Only membership (SWIM) packets travel there, and only on an
    /// open connection: one that arrives before our handshake finished raced the preflight on
    /// the reliable channel and is dropped and counted ([`ConnStats::datagrams_early`];
    /// SWIM tolerates loss). Anything else (oversized, malformed, another kind) breaks the
    /// protocol and closes the connection.
    pub fn handle_datagram(&mut self, peer: &Url, conn: ConnId, msg: Bytes, now: Timestamp) {
        let Some(c) = self.matching(peer, conn) else {
            self.stats.stale_frames += 1;
            return;
        };
        if c.phase != Phase::Open {
            self.stats.datagrams_early += 1;
            return;
        }
        c.last_active = now;
        let len = msg.len();
        let decoded = match decode_frame(msg, MAX_DATAGRAM_BYTES) {
            Ok(m @ WireMessage::Membership { .. }) => m,
            Ok(other) => {
                let what = format!("{} as a datagram", kind_name(&other));
                return self.violation(peer, conn, &what);
            }
            Err(e) => return self.violation(peer, conn, &format!("datagram: {e}")),
        };
        self.stats.datagrams_received += 1;
        self.push(Action::Deliver {
            peer: peer.clone(),
            conn,
            msg: decoded,
            len,
        });
    }

    /// The peer broke the protocol on `conn` (`what`: a malformed chunk or message, a text
    /// data-channel message, …): close it, telling the peer why, and count it.
    pub fn violation(&mut self, peer: &Url, conn: ConnId, what: &str) {
        if self.matching(peer, conn).is_none() {
            return;
        }
        self.stats.protocol_closes += 1;
        self.end(peer, format!("protocol violation: {what}"), true);
    }

    /// Opens `peer`'s connection if both preflights are exchanged.
    fn maybe_open(&mut self, peer: &Url, now: Timestamp) {
        let Some(c) = self.conns.get_mut(peer) else {
            return;
        };
        if c.phase == Phase::Open || c.handshake.ours != OurPreflight::Sent {
            return;
        }
        let Some(agents) = c.handshake.theirs.clone() else {
            return;
        };
        c.phase = Phase::Open;
        c.deadline = None;
        c.last_active = now;
        let (conn, path) = (c.conn, c.path);
        self.push(Action::Connected {
            peer: peer.clone(),
            conn,
            path,
            agents,
        });
    }

    /// A message was sent or received on `conn` (keeps it off the LRU and idle lists).
    pub fn activity(&mut self, peer: &Url, conn: ConnId, now: Timestamp) {
        if let Some(c) = self.matching(peer, conn) {
            c.last_active = now;
        }
    }

    /// The peer connection of `conn` failed (ICE `failed`, an SDP error). An initiator
    /// still negotiating falls back to the relay at once instead of waiting for the timeout;
    /// an acceptor still negotiating waits for the initiator's decision; an established
    /// WebRTC connection closes.
    pub fn webrtc_failed(&mut self, peer: &Url, conn: ConnId, now: Timestamp) {
        let Some(c) = self.matching(peer, conn).cloned() else {
            return;
        };
        match (c.path, c.phase, c.role) {
            (Path::WebRtc, Phase::Negotiating, Role::Initiator) => self.fall_back(peer, now),
            (Path::WebRtc, Phase::Negotiating, Role::Acceptor) | (Path::Relay, _, _) => {}
            (Path::WebRtc, _, _) => self.fail(peer, conn, "WebRTC connection failed", true),
        }
    }

    /// The glue found `conn` broken (data channel closed, send failure): forget it and
    /// queue the [`Action::Close`] to carry out (none if it is not current).
    pub fn fail(&mut self, peer: &Url, conn: ConnId, reason: &str, notify: bool) {
        if self.matching(peer, conn).is_none() {
            return;
        }
        self.end(peer, reason.to_owned(), notify);
    }

    /// The app closes its connection to `peer` (the peer is told why).
    pub fn close(&mut self, peer: &Url, reason: &str) {
        self.end(peer, reason.to_owned(), true);
    }

    /// Our page is being discarded (`pagehide` without `persisted`): closes every
    /// connection, telling each peer `reason` ([`close_all`](Self::close_all)). From now on
    /// peers' new connections are refused (counted as stale frames), and so are ours to the
    /// peers just told ([`ConnError::Departed`]): the space's leave, sent after the close,
    /// opened one over the relay within milliseconds, and that peer reported the closed
    /// page `joined` again, then suspect and down. Members we had no connection with can
    /// still be reached, so the leave's `left` gets to them.
    pub fn depart(&mut self, reason: &str) {
        self.departed = Some(self.conns.keys().cloned().collect());
        self.close_all(reason);
    }

    /// Closes every connection (page hidden, transport shut down), telling each peer; in
    /// the order of their peer URLs.
    pub fn close_all(&mut self, reason: &str) {
        let mut all: Vec<Url> = self.conns.keys().cloned().collect();
        // Unstable: the keys are distinct (and unstable sorts are smaller code).
        sort::sort_by(&mut all, |a, b| a.as_str().cmp(b.as_str()));
        for peer in &all {
            self.end(peer, reason.to_owned(), true);
        }
    }

    /// The earliest time [`handle_timeout`](Self::handle_timeout) has something to do.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let idle = self.idle_us();
        self.conns
            .values()
            .map(|c| {
                let phase_end = c.deadline.unwrap_or(c.last_active.add_micros(idle));
                c.glare_repair_at.map_or(phase_end, |at| at.min(phase_end))
            })
            .min()
    }

    fn idle_us(&self) -> i64 {
        micros(self.config.idle_timeout)
    }

    /// Applies every deadline that passed by `now`: glare winners never heard on their
    /// attempt restart it ([`NetConfig::glare_repair_after`]); initiators still negotiating
    /// fall back to the relay; acceptors still negotiating and handshakes that stalled
    /// close; open connections idle for [`NetConfig::idle_timeout`] close.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let mut lost: Vec<Url> = self
            .conns
            .iter()
            .filter(|(_, c)| c.glare_repair_at.is_some_and(|at| at <= now))
            .map(|(u, _)| u.clone())
            .collect();
        sort::sort_by(&mut lost, |a, b| a.as_str().cmp(b.as_str()));
        for peer in lost {
            self.restart_attempt(&peer, now);
        }
        let idle = self.idle_us();
        let mut due: Vec<(Url, ConnInfo)> = self
            .conns
            .iter()
            .filter(|(_, c)| match c.deadline {
                Some(d) => d <= now,
                None => c.last_active.add_micros(idle) <= now,
            })
            .map(|(u, c)| (u.clone(), c.clone()))
            .collect();
        sort::sort_by(&mut due, |a, b| a.0.as_str().cmp(b.0.as_str())); // distinct keys
        for (peer, c) in due {
            match (c.phase, c.role) {
                (Phase::Negotiating, Role::Initiator) => self.fall_back(&peer, now),
                (Phase::Negotiating, Role::Acceptor) | (Phase::Handshake, _) => {
                    self.stats.timed_out += 1;
                    let why = if c.phase == Phase::Handshake {
                        "timed out waiting for the peer's preflight"
                    } else {
                        "timed out waiting for the connection"
                    };
                    self.end(&peer, why.into(), true);
                }
                (Phase::Open, _) => {
                    self.stats.idle_closed += 1;
                    self.end(&peer, "idle".into(), true);
                }
            }
        }
    }
}
/// The id of a restarted attempt, derived from the old one since the manager has no RNG: a
/// SplitMix64 step (Steele et al. 2014), so ids stay spread over `u64` like the glue's
/// random ones and a restart never reuses the id it replaces.
fn restart_id(old: ConnId) -> ConnId {
    let mut z = old.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The frame kind a protocol-violation reason names: the `K2Proto` type, or fennec's own
/// membership type ([`crate::wire::WIRE_TYPE_MEMBERSHIP`]).
fn kind_name(m: &WireMessage) -> &'static str {
    match m {
        WireMessage::Unspecified { .. } => "UNSPECIFIED",
        WireMessage::Preflight(_) => "PREFLIGHT",
        WireMessage::Notify { .. } => "NOTIFY",
        WireMessage::Fetch { .. } | WireMessage::Publish { .. } | WireMessage::Gossip { .. } => {
            "MODULE"
        }
        WireMessage::Membership { .. } => "MEMBERSHIP",
        WireMessage::Disconnect(_) => "DISCONNECT",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::frame::Candidate;

    fn url(name: &str) -> Url {
        Url::parse(&format!("ws://127.0.0.1:1/{name}")).unwrap()
    }

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_micros(ms * 1000)
    }

    /// `out!(m.input(..))`: feeds `m` one input and returns the actions it queued (every
    /// input in these tests is drained, so none are left over from earlier ones).
    macro_rules! out {
        ($m:ident . $($call:tt)+) => {{
            $m.$($call)+;
            drain(&mut $m)
        }};
    }

    /// An invalid config is refused by [`ConnManager::new`], naming the field.
    #[test]
    fn invalid_config_refused_naming_the_field() {
        let field = |cfg: NetConfig| ConnManager::new(url("a"), cfg).err().map(|e| e.field);
        let d = NetConfig::default;
        assert_eq!(field(d()), None);
        for (cfg, name) in [
            (
                NetConfig {
                    webrtc_connect_timeout: Duration::ZERO,
                    ..d()
                },
                "net.webrtc_connect_timeout",
            ),
            (
                NetConfig {
                    preflight_timeout: Duration::from_nanos(999),
                    ..d()
                },
                "net.preflight_timeout",
            ),
            (
                NetConfig {
                    idle_timeout: Duration::ZERO,
                    ..d()
                },
                "net.idle_timeout",
            ),
            (
                NetConfig {
                    max_connections: 0,
                    ..d()
                },
                "net.max_connections",
            ),
            (
                NetConfig {
                    max_message_bytes: 0,
                    ..d()
                },
                "net.max_message_bytes",
            ),
            (
                NetConfig {
                    chunk_bytes: 0,
                    ..d()
                },
                "net.chunk_bytes",
            ),
            (
                NetConfig {
                    max_message_bytes: 1000,
                    chunk_bytes: 1001,
                    ..d()
                },
                "net.chunk_bytes",
            ),
            (
                NetConfig {
                    send_low_water_bytes: 1024,
                    send_high_water_bytes: 1024,
                    ..d()
                },
                "net.send_low_water_bytes",
            ),
        ] {
            assert_eq!(field(cfg), Some(name));
        }
        // The smallest valid values are accepted.
        let tight = NetConfig {
            webrtc_connect_timeout: Duration::from_micros(1),
            preflight_timeout: Duration::from_micros(1),
            idle_timeout: Duration::from_micros(1),
            max_connections: 1,
            max_message_bytes: 1,
            chunk_bytes: 1,
            send_low_water_bytes: 0,
            send_high_water_bytes: 1,
            ..d()
        };
        assert_eq!(field(tight), None);
        let err = ConnManager::new(
            url("a"),
            NetConfig {
                chunk_bytes: 0,
                ..d()
            },
        )
        .err()
        .unwrap();
        assert_eq!(
            err.to_string(),
            "config field `net.chunk_bytes` must be at least 1"
        );
    }

    fn mgr(local: &str) -> ConnManager {
        ConnManager::new(url(local), NetConfig::default()).unwrap()
    }

    /// An empty PREFLIGHT.
    fn pf() -> Bytes {
        crate::net::admission::encode_preflight(&[])
    }

    /// Completes the handshake of `conn` with `peer` at `now`: path up, their preflight
    /// received, ours sent. Returns every action.
    fn finish_handshake(
        m: &mut ConnManager,
        peer: &str,
        conn: ConnId,
        now: Timestamp,
    ) -> Vec<Action> {
        m.path_open(&url(peer), conn, now);
        m.handle_message(&url(peer), conn, pf(), now);
        m.preflight_sent(&url(peer), conn, now);
        drain(m)
    }

    /// Every action queued since the last drain, in order.
    fn drain(m: &mut ConnManager) -> Vec<Action> {
        std::iter::from_fn(|| m.poll_output()).collect()
    }

    fn connected(peer: &str, conn: ConnId, path: Path) -> Action {
        Action::Connected {
            peer: url(peer),
            conn,
            path,
            agents: vec![],
        }
    }

    fn disconnected(peer: &str, reason: &str) -> Action {
        Action::Disconnected {
            peer: url(peer),
            reason: reason.into(),
        }
    }

    fn send_pf(peer: &str, conn: ConnId) -> Action {
        Action::SendPreflight {
            peer: url(peer),
            conn,
        }
    }

    fn offer(conn: ConnId) -> SignalFrame {
        SignalFrame::Offer {
            conn,
            sdp: "sdp".into(),
        }
    }

    fn data(conn: ConnId) -> SignalFrame {
        SignalFrame::Data {
            conn,
            chunk: bytes::Bytes::from_static(&[0x10, 0, 0, 0, 0]),
        }
    }

    fn start(peer: &str, conn: ConnId, role: Role, path: Path) -> Action {
        Action::Start {
            peer: url(peer),
            conn,
            role,
            path,
        }
    }

    fn route(peer: &str, conn: ConnId, frame: SignalFrame) -> Action {
        Action::Route {
            peer: url(peer),
            conn,
            frame,
        }
    }

    #[test]
    fn connect_starts_once_then_reuses() {
        let mut m = mgr("a");
        let id = m.connect(&url("b"), 1, t(0)).unwrap();
        assert_eq!(id, 1);
        assert_eq!(
            drain(&mut m),
            vec![start("b", 1, Role::Initiator, Path::WebRtc)]
        );
        let id = m.connect(&url("b"), 2, t(5)).unwrap();
        assert_eq!((id, drain(&mut m)), (1, vec![]));
        assert_eq!(m.get(&url("b")).unwrap().last_active, t(5));
        assert_eq!(m.stats().peer_connections_created, 1);
        assert_eq!(m.connect(&url("a"), 3, t(0)), Err(ConnError::SelfConnect));
        let server = Url::parse("ws://127.0.0.1:1").unwrap();
        assert_eq!(
            m.connect(&server, 3, t(0)),
            Err(ConnError::NotAPeer(server.clone()))
        );
    }

    #[test]
    fn lifecycle_over_webrtc_then_idle_close() {
        let mut m = mgr("a");
        out!(m.connect(&url("b"), 1, t(0)).unwrap());
        let answer = SignalFrame::Answer {
            conn: 1,
            sdp: "x".into(),
        };
        assert_eq!(
            out!(m.handle_signal(&url("b"), answer.clone(), t(1))),
            vec![route("b", 1, answer)]
        );
        assert_eq!(m.poll_timeout(), Some(t(15_000)));
        assert_eq!(
            out!(m.path_open(&url("b"), 1, t(100))),
            vec![send_pf("b", 1)]
        );
        assert_eq!(m.get(&url("b")).unwrap().phase, Phase::Handshake);
        assert_eq!(m.poll_timeout(), Some(t(10_100)));
        assert_eq!(out!(m.handle_message(&url("b"), 1, pf(), t(150))), vec![]);
        assert_eq!(
            out!(m.preflight_sent(&url("b"), 1, t(200))),
            vec![connected("b", 1, Path::WebRtc)]
        );
        assert_eq!(m.poll_timeout(), Some(t(60_200)));
        m.activity(&url("b"), 1, t(30_000));
        assert_eq!(out!(m.handle_timeout(t(60_200))), vec![]);
        assert_eq!(
            out!(m.handle_timeout(t(90_000))),
            vec![
                Action::Close {
                    peer: url("b"),
                    conn: 1,
                    reason: "idle".into(),
                    notify: true
                },
                disconnected("b", "idle")
            ]
        );
        assert!(m.is_empty());
        assert_eq!(m.stats().idle_closed, 1);
        // Late frames for the closed connection are stale.
        assert_eq!(
            out!(m.handle_signal(
                &url("b"),
                SignalFrame::Candidate {
                    conn: 1,
                    candidate: Candidate::default()
                },
                t(90_001)
            )),
            vec![]
        );
        assert_eq!(m.stats().stale_frames, 1);
        assert_eq!(out!(m.path_open(&url("b"), 1, t(90_002))), vec![]);
    }

    #[test]
    fn initiator_falls_back_to_relay_after_the_connect_timeout() {
        let mut m = mgr("a");
        out!(m.connect(&url("b"), 1, t(0)).unwrap());
        assert_eq!(out!(m.handle_timeout(t(14_999))), vec![]);
        assert_eq!(
            out!(m.handle_timeout(t(15_000))),
            vec![
                Action::FallBack {
                    peer: url("b"),
                    conn: 1
                },
                send_pf("b", 1)
            ]
        );
        let c = m.get(&url("b")).unwrap();
        assert_eq!((c.path, c.phase), (Path::Relay, Phase::Handshake));
        // Relayed data now routes; a late answer is stale.
        assert_eq!(
            out!(m.handle_signal(&url("b"), data(1), t(15_001))),
            vec![route("b", 1, data(1))]
        );
        let late = SignalFrame::Answer {
            conn: 1,
            sdp: "x".into(),
        };
        assert_eq!(out!(m.handle_signal(&url("b"), late, t(15_002))), vec![]);
        // The handshake has its own deadline.
        assert_eq!(
            out!(m.handle_timeout(t(25_000))),
            vec![Action::Close {
                peer: url("b"),
                conn: 1,
                reason: "timed out waiting for the peer's preflight".into(),
                notify: true
            }]
        );
        assert_eq!(m.stats().fallbacks, 1);
        assert_eq!(m.stats().timed_out, 1);
    }

    #[test]
    fn no_rtc_reply_moves_the_initiator_to_the_relay_at_once() {
        let mut m = mgr("a");
        out!(m.connect(&url("b"), 1, t(0)).unwrap());
        assert_eq!(
            out!(m.handle_signal(&url("b"), SignalFrame::NoRtc { conn: 1 }, t(3))),
            vec![
                Action::FallBack {
                    peer: url("b"),
                    conn: 1
                },
                send_pf("b", 1)
            ]
        );
        // A second one is stale (no longer negotiating).
        assert_eq!(
            out!(m.handle_signal(&url("b"), SignalFrame::NoRtc { conn: 1 }, t(4))),
            vec![]
        );
    }

    #[test]
    fn a_webrtc_failure_falls_back_early_or_closes() {
        let mut m = mgr("a");
        out!(m.connect(&url("b"), 1, t(0)).unwrap());
        assert_eq!(
            out!(m.webrtc_failed(&url("b"), 1, t(50))),
            vec![
                Action::FallBack {
                    peer: url("b"),
                    conn: 1
                },
                send_pf("b", 1)
            ]
        );
        // Once relayed, later WebRTC failures of that connection change nothing.
        assert_eq!(out!(m.webrtc_failed(&url("b"), 1, t(51))), vec![]);
        // The acceptor waits; an open WebRTC connection closes.
        let mut b = mgr("b");
        out!(b.handle_signal(&url("a"), offer(7), t(0)));
        assert_eq!(out!(b.webrtc_failed(&url("a"), 7, t(1))), vec![]);
        finish_handshake(&mut b, "a", 7, t(2));
        assert_eq!(
            out!(b.webrtc_failed(&url("a"), 7, t(4))),
            vec![
                Action::Close {
                    peer: url("a"),
                    conn: 7,
                    reason: "WebRTC connection failed".into(),
                    notify: true
                },
                disconnected("a", "WebRTC connection failed")
            ]
        );
        assert_eq!(out!(b.webrtc_failed(&url("a"), 7, t(5))), vec![]);
    }

    #[test]
    fn acceptor_follows_the_offer_and_the_peers_fallback() {
        let mut m = mgr("b");
        assert_eq!(
            out!(m.handle_signal(&url("a"), offer(7), t(0))),
            vec![
                start("a", 7, Role::Acceptor, Path::WebRtc),
                route("a", 7, offer(7))
            ]
        );
        assert_eq!(m.poll_timeout(), Some(t(25_000)));
        // Its data channel opened, but the initiator's did not: it relays its preflight.
        assert_eq!(out!(m.path_open(&url("a"), 7, t(10))), vec![]);
        assert_eq!(
            out!(m.handle_signal(&url("a"), data(7), t(15_000))),
            vec![
                Action::FallBack {
                    peer: url("a"),
                    conn: 7
                },
                route("a", 7, data(7))
            ]
        );
        assert_eq!(
            out!(m.handle_message(&url("a"), 7, pf(), t(15_001))),
            vec![send_pf("a", 7)]
        );
        assert_eq!(
            out!(m.preflight_sent(&url("a"), 7, t(15_001))),
            vec![connected("a", 7, Path::Relay)]
        );
        // Once open, relayed data is simply routed.
        assert_eq!(
            out!(m.handle_signal(&url("a"), data(7), t(15_002))),
            vec![route("a", 7, data(7))]
        );
    }

    #[test]
    fn relayed_data_on_an_open_webrtc_connection_is_a_violation() {
        let mut m = mgr("b");
        out!(m.handle_signal(&url("a"), offer(7), t(0)));
        finish_handshake(&mut m, "a", 7, t(1));
        let why = "protocol violation: relayed data on a WebRTC connection";
        assert_eq!(
            out!(m.handle_signal(&url("a"), data(7), t(3))),
            vec![
                Action::Close {
                    peer: url("a"),
                    conn: 7,
                    reason: why.into(),
                    notify: true
                },
                disconnected("a", why)
            ]
        );
    }

    #[test]
    fn acceptor_gives_up_when_the_initiator_vanishes() {
        let mut m = mgr("b");
        out!(m.handle_signal(&url("a"), offer(7), t(0)));
        assert_eq!(
            out!(m.handle_timeout(t(25_000))),
            vec![Action::Close {
                peer: url("a"),
                conn: 7,
                reason: "timed out waiting for the connection".into(),
                notify: true
            }]
        );
    }

    #[test]
    fn relayed_data_from_a_stranger_starts_a_relay_connection() {
        let mut m = mgr("b");
        assert_eq!(
            out!(m.handle_signal(&url("a"), data(9), t(0))),
            vec![
                start("a", 9, Role::Acceptor, Path::Relay),
                route("a", 9, data(9))
            ]
        );
        assert_eq!(m.stats().peer_connections_created, 0);
    }

    #[test]
    fn webrtc_disabled_relays_everything_and_answers_offers_with_no_rtc() {
        let mut m = ConnManager::new(
            url("b"),
            NetConfig {
                webrtc: false,
                ..NetConfig::default()
            },
        )
        .unwrap();
        assert_eq!(
            out!(m.connect(&url("c"), 1, t(0)).unwrap()),
            vec![start("c", 1, Role::Initiator, Path::Relay), send_pf("c", 1)]
        );
        assert_eq!(
            out!(m.handle_signal(&url("a"), offer(7), t(0))),
            vec![
                start("a", 7, Role::Acceptor, Path::Relay),
                Action::Reply {
                    peer: url("a"),
                    frame: SignalFrame::NoRtc { conn: 7 }
                }
            ]
        );
        // The offerer's relayed preflight then routes to that connection.
        assert_eq!(
            out!(m.handle_signal(&url("a"), data(7), t(1))),
            vec![route("a", 7, data(7))]
        );
        assert_eq!(m.stats().peer_connections_created, 0);
        assert_eq!(m.stats().relay_only, 2);
    }

    #[test]
    fn the_peer_connection_budget_is_hard() {
        let mut m = ConnManager::new(
            url("a"),
            NetConfig {
                peer_connection_budget: 2,
                max_connections: 100,
                ..NetConfig::default()
            },
        )
        .unwrap();
        let paths: Vec<Path> = (0..4)
            .map(
                |i| match &out!(m.connect(&url(&format!("p{i}")), i, t(0)).unwrap())[0] {
                    Action::Start { path, .. } => *path,
                    a => panic!("{a:?}"),
                },
            )
            .collect();
        assert_eq!(
            paths,
            [Path::WebRtc, Path::WebRtc, Path::Relay, Path::Relay]
        );
        assert_eq!(m.peer_connections_left(), 0);
        // Incoming offers cannot spend it either.
        assert_eq!(
            out!(m.handle_signal(&url("q"), offer(50), t(0)))[1],
            Action::Reply {
                peer: url("q"),
                frame: SignalFrame::NoRtc { conn: 50 }
            }
        );
        assert_eq!(m.stats().peer_connections_created, 2);
    }

    #[test]
    fn one_peer_cannot_spend_the_budget_and_the_page_cap_applies() {
        let mut m = ConnManager::new(
            url("a"),
            NetConfig {
                peer_connections_per_peer: 2,
                ..NetConfig::default()
            },
        )
        .unwrap();
        // A hostile peer re-offers with fresh ids: each replaces the last, two get WebRTC.
        let paths: Vec<Action> = (0..4)
            .map(|i| {
                out!(m.handle_signal(&url("evil"), offer(i), t(i as i64)))
                    .pop()
                    .unwrap()
            })
            .collect();
        assert!(matches!(paths[0], Action::Route { .. }));
        assert!(matches!(paths[1], Action::Route { .. }));
        assert!(matches!(
            paths[2],
            Action::Reply {
                frame: SignalFrame::NoRtc { conn: 2 },
                ..
            }
        ));
        assert_eq!(m.stats().peer_connections_created, 2);
        // Other peers are unaffected, until the page says its budget is spent.
        let start_path =
            |acts: Vec<Action>| match acts.iter().find(|a| matches!(a, Action::Start { .. })) {
                Some(Action::Start { path, .. }) => *path,
                a => panic!("{a:?}"),
            };
        assert_eq!(
            start_path(out!(m.connect(&url("b"), 10, t(9)).unwrap())),
            Path::WebRtc
        );
        m.set_page_budget_left(0);
        assert_eq!(m.peer_connections_left(), 0);
        assert_eq!(
            start_path(out!(m.connect(&url("c"), 11, t(9)).unwrap())),
            Path::Relay
        );
    }

    #[test]
    fn the_active_set_is_bounded_and_the_least_recently_used_goes() {
        let mut m = ConnManager::new(
            url("a"),
            NetConfig {
                max_connections: 3,
                ..NetConfig::default()
            },
        )
        .unwrap();
        for (i, p) in ["p1", "p2", "p3"].into_iter().enumerate() {
            out!(m.connect(&url(p), i as u64, t(i as i64)).unwrap());
        }
        m.activity(&url("p1"), 0, t(10)); // p2 is now the least recently used
        let acts = out!(m.connect(&url("p4"), 4, t(11)).unwrap());
        assert_eq!(
            acts,
            vec![
                Action::Close {
                    peer: url("p2"),
                    conn: 1,
                    reason: "connection limit: closed the least recently used".into(),
                    notify: true
                },
                start("p4", 4, Role::Initiator, Path::WebRtc)
            ]
        );
        // An incoming connection makes room the same way (p3 is now the oldest).
        let acts = out!(m.handle_signal(&url("p5"), offer(5), t(12)));
        assert!(matches!(&acts[0], Action::Close { peer, .. } if peer == &url("p3")));
        assert_eq!(m.len(), 3);
        assert_eq!(m.stats().evicted, 2);
    }

    #[test]
    fn glare_is_resolved_by_the_smaller_url_on_both_sides() {
        // a < b: a's connection (1) wins, b's (2) yields. Run both sides.
        let mut a = mgr("a");
        let mut b = mgr("b");
        out!(a.connect(&url("b"), 1, t(0)).unwrap());
        out!(b.connect(&url("a"), 2, t(0)).unwrap());

        // a gets b's offer: ignores it.
        assert_eq!(out!(a.handle_signal(&url("b"), offer(2), t(1))), vec![]);
        assert_eq!(a.get(&url("b")).unwrap().conn, 1);
        assert_eq!(a.stats().glare_won, 1);

        // b gets a's offer: abandons 2, accepts 1.
        assert_eq!(
            out!(b.handle_signal(&url("a"), offer(1), t(1))),
            vec![
                Action::Close {
                    peer: url("a"),
                    conn: 2,
                    reason: "superseded by the peer's simultaneous connection".into(),
                    notify: false
                },
                start("a", 1, Role::Acceptor, Path::WebRtc),
                route("a", 1, offer(1))
            ]
        );
        assert_eq!(b.stats().glare_yielded, 1);
        // Both now agree on connection 1; b's late answer for 2 would be stale at a.
        let stale = SignalFrame::Answer {
            conn: 2,
            sdp: "x".into(),
        };
        assert_eq!(out!(a.handle_signal(&url("b"), stale, t(2))), vec![]);
    }

    /// Managers for peers `a` and `b` with WebRTC off (every connection relayed).
    fn relay_only_pair() -> (ConnManager, ConnManager) {
        let cfg = NetConfig {
            webrtc: false,
            ..NetConfig::default()
        };
        (
            ConnManager::new(url("a"), cfg.clone()).unwrap(),
            ConnManager::new(url("b"), cfg).unwrap(),
        )
    }

    #[test]
    fn glare_between_relay_only_peers_is_resolved_the_same_way() {
        let (mut a, mut b) = relay_only_pair();
        out!(a.connect(&url("b"), 1, t(0)).unwrap());
        out!(b.connect(&url("a"), 2, t(0)).unwrap());
        assert_eq!(out!(a.handle_signal(&url("b"), data(2), t(1))), vec![]);
        let acts = out!(b.handle_signal(&url("a"), data(1), t(1)));
        assert_eq!(
            acts[1..],
            [
                start("a", 1, Role::Acceptor, Path::Relay),
                route("a", 1, data(1))
            ]
        );
    }

    /// Relays every frame `from` queued for `to` as the glue would: a preflight as relayed
    /// data on its connection (then the whole message), closes with notice, routed frames.
    fn relay_pair(from: &mut ConnManager, to: &mut ConnManager, now: Timestamp) {
        let from_name = from.local().clone();
        for a in drain(from) {
            match a {
                Action::SendPreflight { peer, conn } => {
                    from.preflight_sent(&peer, conn, now);
                    to.handle_signal(&from_name, data(conn), now);
                    to.handle_message(&from_name, conn, pf(), now);
                }
                Action::Close {
                    conn,
                    reason,
                    notify: true,
                    ..
                } => to.handle_signal(&from_name, SignalFrame::Close { conn, reason }, now),
                _ => {}
            }
        }
    }

    /// Relay-only a < b: a's attempt 1 goes out at 0 while b is not on the signal server (its
    /// preflight is lost); b starts 2 at `b_at` and its preflight reaches a 10 ms later,
    /// where a wins the glare and ignores it (b waits on 2).
    fn glare_after_a_lost_opening(b_at: i64) -> (ConnManager, ConnManager) {
        let (mut a, mut b) = relay_only_pair();
        a.connect(&url("b"), 1, t(0)).unwrap();
        for act in drain(&mut a) {
            if let Action::SendPreflight { peer, conn } = act {
                a.preflight_sent(&peer, conn, t(0)); // sent, and lost on the way
            }
        }
        b.connect(&url("a"), 2, t(b_at)).unwrap();
        drain(&mut b);
        a.handle_signal(&url("b"), data(2), t(b_at + 10));
        assert_eq!(a.stats().glare_won, 1);
        (a, b)
    }

    /// a restarted its attempt: b, still waiting on 2, yields to the new one and both are
    /// open on it from `at` + 30 ms, long before the 10 s preflight timeout.
    fn both_open_on_the_restarted_attempt(a: &mut ConnManager, b: &mut ConnManager, at: i64) {
        assert_eq!(a.stats().glare_restarted, 1);
        let fresh = a.get(&url("b")).unwrap().conn;
        assert!(fresh != 1 && fresh != 2, "{fresh}");
        relay_pair(a, b, t(at + 10));
        relay_pair(b, a, t(at + 20));
        relay_pair(a, b, t(at + 30));
        assert_eq!(b.stats().glare_yielded, 1);
        for (m, peer) in [(&*a, "b"), (&*b, "a")] {
            let c = m.get(&url(peer)).unwrap();
            assert_eq!((c.conn, c.phase), (fresh, Phase::Open), "{peer}");
        }
    }

    #[test]
    fn a_glare_winner_whose_opening_was_lost_restarts_its_attempt() {
        let (mut a, mut b) = glare_after_a_lost_opening(500);
        assert_eq!(drain(&mut a), vec![]);
        // Nothing is heard on 1, so at `glare_repair_after` a restarts it under a new id
        // (and tells b to drop 1, in case b had it after all).
        assert_eq!(a.poll_timeout(), Some(t(3_510)));
        a.handle_timeout(t(3_510));
        both_open_on_the_restarted_attempt(&mut a, &mut b, 3_510);
    }

    #[test]
    fn a_glare_winner_whose_attempt_is_older_than_the_repair_wait_restarts_at_once() {
        // b starts 2 only 5 s after a's lost opening (b was away: a tab asleep, back on the
        // signal server): no true glare is that far apart.
        let (mut a, mut b) = glare_after_a_lost_opening(5_000);
        both_open_on_the_restarted_attempt(&mut a, &mut b, 5_010);
    }

    #[test]
    fn a_true_glare_answered_in_time_does_not_restart() {
        let (mut a, mut b) = relay_only_pair();
        a.connect(&url("b"), 1, t(0)).unwrap();
        b.connect(&url("a"), 2, t(0)).unwrap();
        drain(&mut b);
        b.preflight_sent(&url("a"), 2, t(0));
        // Both openings cross: a wins and waits; b yields to 1 and answers 2.9 s later.
        a.handle_signal(&url("b"), data(2), t(10));
        relay_pair(&mut a, &mut b, t(10));
        assert_eq!(b.stats().glare_yielded, 1);
        relay_pair(&mut b, &mut a, t(2_910));
        a.handle_timeout(t(20_000 - 1));
        assert_eq!(a.stats().glare_restarted, 0);
        let c = a.get(&url("b")).unwrap();
        assert_eq!((c.conn, c.phase), (1, Phase::Open));
        assert_eq!(b.get(&url("a")).unwrap().conn, 1);
    }

    #[test]
    fn a_new_connection_from_a_peer_replaces_an_open_one() {
        let mut m = mgr("a");
        out!(m.connect(&url("b"), 1, t(0)).unwrap());
        finish_handshake(&mut m, "b", 1, t(1));
        // Even though a < b, an open connection is not in glare: b must have dropped it.
        let acts = out!(m.handle_signal(&url("b"), offer(3), t(3)));
        assert_eq!(
            acts,
            vec![
                Action::Close {
                    peer: url("b"),
                    conn: 1,
                    reason: "replaced by a new connection from the peer".into(),
                    notify: false
                },
                disconnected("b", "replaced by a new connection from the peer"),
                start("b", 3, Role::Acceptor, Path::WebRtc),
                route("b", 3, offer(3))
            ]
        );
        assert_eq!(m.stats().replaced, 1);
    }

    #[test]
    fn role_mismatched_and_stale_frames_are_ignored() {
        let mut m = mgr("a");
        out!(m.connect(&url("b"), 1, t(0)).unwrap());
        // An offer echoing our own initiator id, an answer to nothing, NoRtc/close for
        // other ids, frames "from" ourselves.
        assert_eq!(out!(m.handle_signal(&url("b"), offer(1), t(1))), vec![]);
        let answer = SignalFrame::Answer {
            conn: 9,
            sdp: String::new(),
        };
        assert_eq!(out!(m.handle_signal(&url("c"), answer, t(1))), vec![]);
        assert_eq!(
            out!(m.handle_signal(&url("b"), SignalFrame::NoRtc { conn: 2 }, t(1))),
            vec![]
        );
        let close = SignalFrame::Close {
            conn: 2,
            reason: "x".into(),
        };
        assert_eq!(out!(m.handle_signal(&url("b"), close, t(1))), vec![]);
        assert_eq!(out!(m.handle_signal(&url("a"), offer(5), t(1))), vec![]);
        assert_eq!(m.stats().stale_frames, 5);
        assert_eq!(m.get(&url("b")).unwrap().conn, 1);
    }

    #[test]
    fn peer_close_app_close_and_close_all() {
        let mut m = mgr("a");
        out!(m.connect(&url("b"), 1, t(0)).unwrap());
        out!(m.connect(&url("c"), 2, t(0)).unwrap());
        out!(m.connect(&url("d"), 3, t(0)).unwrap());
        let close = SignalFrame::Close {
            conn: 1,
            reason: "bye".into(),
        };
        assert_eq!(
            out!(m.handle_signal(&url("b"), close, t(1))),
            vec![Action::Close {
                peer: url("b"),
                conn: 1,
                reason: "closed by peer: bye".into(),
                notify: false
            }]
        );
        assert_eq!(
            out!(m.close(&url("c"), "done")),
            vec![Action::Close {
                peer: url("c"),
                conn: 2,
                reason: "done".into(),
                notify: true
            }]
        );
        assert_eq!(out!(m.close(&url("c"), "again")), vec![]);
        assert_eq!(out!(m.fail(&url("d"), 99, "old", true)), vec![]);
        assert_eq!(
            out!(m.close_all("pagehide")),
            vec![Action::Close {
                peer: url("d"),
                conn: 3,
                reason: "pagehide".into(),
                notify: true
            }]
        );
        assert!(m.is_empty());
        assert_eq!(m.poll_timeout(), None);
    }

    /// A page being discarded closes its connections and opens no new one to the peers it
    /// told (the space's leave, sent after the close, fails there), nor a peer's (ignored,
    /// counted); a member it had no connection with can still be told it left.
    #[test]
    fn a_departed_page_closes_all_and_reopens_none() {
        let mut m = mgr("a");
        out!(m.connect(&url("b"), 1, t(0)).unwrap());
        assert_eq!(
            out!(m.depart("page closed")),
            vec![Action::Close {
                peer: url("b"),
                conn: 1,
                reason: "page closed".into(),
                notify: true
            }]
        );
        assert_eq!(m.connect(&url("b"), 2, t(1)), Err(ConnError::Departed));
        assert_eq!(out!(m.handle_signal(&url("c"), data(3), t(1))), vec![]);
        assert_eq!(out!(m.handle_signal(&url("d"), offer(4), t(1))), vec![]);
        assert!(m.is_empty());
        assert_eq!(m.stats().stale_frames, 2);
        assert_eq!(m.connect(&url("e"), 5, t(1)), Ok(5));
        // A page only hidden (back/forward cache) may come back: it connects again.
        let mut m = mgr("a");
        out!(m.connect(&url("b"), 1, t(0)).unwrap());
        out!(m.close_all("page hidden"));
        assert_eq!(m.connect(&url("b"), 6, t(1)), Ok(6));
    }

    /// A peer whose page closed is never connected to again: its URL is gone (a late answer
    /// to it fails instead of opening a connection that waits out its timeout). A peer that
    /// said goodbye otherwise (its page only hidden, or a close of that connection) may be.
    #[test]
    fn a_peer_whose_page_closed_is_not_connected_to_again() {
        for (reason, again) in [(PAGE_CLOSED, false), ("page hidden", true), ("bye", true)] {
            let mut m = mgr("b");
            out!(m.handle_signal(&url("a"), offer(7), t(0)));
            finish_handshake(&mut m, "a", 7, t(1));
            let bye = crate::wire::encode_disconnect(reason);
            out!(m.handle_message(&url("a"), 7, bye, t(2)));
            let r = m.connect(&url("a"), 8, t(3));
            match again {
                true => assert_eq!(r, Ok(8), "{reason}"),
                false => assert_eq!(r, Err(ConnError::PageClosed(url("a"))), "{reason}"),
            }
            assert_eq!(
                m.connect(&url("c"), 9, t(3)),
                Ok(9),
                "{reason}: another peer"
            );
        }
    }

    /// The relayed close notice that goes with a closing page's DISCONNECT says it too, and
    /// may come first (the data channel dies with the page): then the page is just as gone,
    /// whichever connection the notice names. Seen in `reload-mid-sync.test.mjs` (2 runs of
    /// 8): the notice ended the connection without remembering the page, and a late answer
    /// opened a new one to the dead URL, kept until the preflight timeout (~25 s).
    #[test]
    fn a_relayed_page_closed_notice_ends_every_connection_to_that_page() {
        for notice_conn in [7, 3] {
            let mut m = mgr("b");
            out!(m.handle_signal(&url("a"), offer(7), t(0)));
            finish_handshake(&mut m, "a", 7, t(1));
            let close = SignalFrame::Close {
                conn: notice_conn,
                reason: PAGE_CLOSED.into(),
            };
            let acts = out!(m.handle_signal(&url("a"), close, t(2)));
            assert!(
                matches!(&acts[0], Action::Close { peer, conn: 7, .. } if peer == &url("a")),
                "notice for conn {notice_conn}: {acts:?}"
            );
            assert!(m.get(&url("a")).is_none());
            assert_eq!(
                m.connect(&url("a"), 8, t(3)),
                Err(ConnError::PageClosed(url("a")))
            );
        }
    }

    // ------------------------------------------------------------- the handshake

    fn notify() -> Bytes {
        crate::wire::encode_notify(
            &crate::model::id::SpaceId::from_bytes(vec![1; 32]),
            Bytes::from_static(b"hi"),
        )
    }

    fn violation(peer: &str, conn: ConnId, what: &str, open: bool) -> Vec<Action> {
        let reason = format!("protocol violation: {what}");
        let mut v = vec![Action::Close {
            peer: url(peer),
            conn,
            reason: reason.clone(),
            notify: true,
        }];
        if open {
            v.push(disconnected(peer, &reason));
        }
        v
    }

    #[test]
    fn initiator_sends_its_preflight_first_and_opens_on_the_answer() {
        let mut m = mgr("a");
        out!(m.connect(&url("b"), 1, t(0)).unwrap());
        // Nothing is sent before the data channel is open.
        assert_eq!(
            m.get(&url("b")).unwrap().handshake.ours,
            OurPreflight::Unsent
        );
        assert_eq!(out!(m.path_open(&url("b"), 1, t(5))), vec![send_pf("b", 1)]);
        // Asked once only, even if the glue reports the open twice.
        assert_eq!(out!(m.path_open(&url("b"), 1, t(6))), vec![]);
        // Sent before theirs arrived: not open yet.
        assert_eq!(out!(m.preflight_sent(&url("b"), 1, t(7))), vec![]);
        assert_eq!(m.get(&url("b")).unwrap().phase, Phase::Handshake);
        assert_eq!(
            out!(m.preflight_sent(&url("b"), 1, t(7))),
            vec![],
            "reported twice"
        );
        assert_eq!(
            out!(m.handle_message(&url("b"), 1, pf(), t(8))),
            vec![connected("b", 1, Path::WebRtc)]
        );
        assert_eq!(m.get(&url("b")).unwrap().phase, Phase::Open);
        // Module traffic now arrives decoded, once.
        let acts = out!(m.handle_message(&url("b"), 1, notify(), t(9)));
        assert!(
            matches!(&acts[..], [Action::Deliver { msg: WireMessage::Notify { data, .. }, len, .. }]
                if &data[..] == b"hi" && *len == notify().len()),
            "{acts:?}"
        );
        assert_eq!(m.stats().messages_received, 1);
    }

    #[test]
    fn acceptor_answers_the_preflight_whether_its_channel_opened_before_or_after() {
        // Its data channel opens first, then the initiator's preflight arrives.
        let mut m = mgr("b");
        out!(m.handle_signal(&url("a"), offer(7), t(0)));
        assert_eq!(
            out!(m.path_open(&url("a"), 7, t(1))),
            vec![],
            "the acceptor waits"
        );
        assert_eq!(
            out!(m.handle_message(&url("a"), 7, pf(), t(2))),
            vec![send_pf("a", 7)]
        );
        assert_eq!(
            out!(m.preflight_sent(&url("a"), 7, t(3))),
            vec![connected("a", 7, Path::WebRtc)]
        );
        // The preflight arrives before the glue saw the channel's `open`.
        let mut m = mgr("b");
        out!(m.handle_signal(&url("a"), offer(7), t(0)));
        assert_eq!(
            out!(m.handle_message(&url("a"), 7, pf(), t(1))),
            vec![send_pf("a", 7)]
        );
        assert_eq!(m.get(&url("a")).unwrap().phase, Phase::Handshake);
        assert_eq!(
            out!(m.path_open(&url("a"), 7, t(2))),
            vec![],
            "a late open changes nothing"
        );
        assert_eq!(
            out!(m.preflight_sent(&url("a"), 7, t(3))),
            vec![connected("a", 7, Path::WebRtc)]
        );
    }

    #[test]
    fn the_preflight_carries_verified_agents_to_connected() {
        use crate::model::agent::{AgentInfo, AgentKey};
        let key = AgentKey::from_secret_bytes(&[1; 32]);
        let sign = |u: &str| {
            AgentInfoSigned::sign(
                &key,
                AgentInfo::new(
                    key.agent_id(),
                    crate::model::id::SpaceId::from_bytes(vec![1; 32]),
                    t(0),
                    Some(url(u)),
                    crate::model::arc::DhtArc::FULL,
                ),
            )
            .unwrap()
        };
        let (mine, other) = (sign("a"), sign("z"));
        let mut m = mgr("b");
        out!(m.handle_signal(&url("a"), offer(7), t(0)));
        let preflight = crate::net::admission::encode_preflight(&[mine.clone(), other]);
        out!(m.handle_message(&url("a"), 7, preflight, t(1)));
        assert_eq!(
            out!(m.preflight_sent(&url("a"), 7, t(2))),
            vec![Action::Connected {
                peer: url("a"),
                conn: 7,
                path: Path::WebRtc,
                agents: vec![mine]
            }]
        );
        assert_eq!(m.stats().preflight_agents_rejected, 1);
    }

    /// The datagram lane carries membership packets of open connections only: early ones
    /// are dropped and counted, any other kind or an oversized one closes.
    #[test]
    fn datagrams_deliver_membership_of_open_connections_only() {
        let swim = crate::wire::encode_membership(vec![9u8]);
        let mut m = mgr("b");
        out!(m.handle_signal(&url("a"), offer(7), t(0)));
        out!(m.path_open(&url("a"), 7, t(1)));
        assert_eq!(
            out!(m.handle_datagram(&url("a"), 7, swim.clone(), t(1))),
            vec![]
        );
        assert_eq!(m.stats().datagrams_early, 1, "raced the preflight");
        assert_eq!(m.get(&url("a")).unwrap().phase, Phase::Handshake);
        out!(m.handle_message(&url("a"), 7, pf(), t(2)));
        out!(m.preflight_sent(&url("a"), 7, t(2)));
        let acts = out!(m.handle_datagram(&url("a"), 7, swim.clone(), t(3)));
        assert!(
            matches!(&acts[..], [Action::Deliver { msg: WireMessage::Membership { .. }, len, .. }]
                if *len == swim.len()),
            "{acts:?}"
        );
        assert_eq!(m.stats().datagrams_received, 1);
        assert_eq!(out!(m.handle_datagram(&url("a"), 8, swim, t(3))), vec![]);
        assert_eq!(m.stats().stale_frames, 1, "another connection's");
        assert!(matches!(
            &out!(m.handle_datagram(&url("a"), 7, notify(), t(4)))[..],
            [Action::Close { reason, .. }, ..] if reason.contains("NOTIFY as a datagram")
        ));
        let mut m = mgr("b");
        out!(m.handle_signal(&url("a"), offer(7), t(0)));
        finish_handshake(&mut m, "a", 7, t(1));
        let big = crate::wire::encode_membership(vec![0u8; MAX_DATAGRAM_BYTES]);
        assert!(matches!(
            &out!(m.handle_datagram(&url("a"), 7, big, t(2)))[..],
            [Action::Close { reason, .. }, ..] if reason.contains("datagram")
        ));
        assert_eq!(m.stats().protocol_closes, 1);
    }

    #[test]
    fn a_message_before_the_preflight_or_a_second_preflight_closes() {
        let mut m = mgr("b");
        out!(m.handle_signal(&url("a"), offer(7), t(0)));
        out!(m.path_open(&url("a"), 7, t(1)));
        assert_eq!(
            out!(m.handle_message(&url("a"), 7, notify(), t(2))),
            violation("a", 7, "expected a preflight first, got NOTIFY", false)
        );
        assert!(m.is_empty());
        // Even a message for a module we do not run is fatal before the preflight.
        let mut m = mgr("b");
        out!(m.handle_signal(&url("a"), offer(7), t(0)));
        let other = crate::wire::encode_module(
            &crate::model::id::SpaceId::from_bytes(vec![1; 32]),
            "Other",
            Bytes::new(),
        );
        assert!(matches!(
            &out!(m.handle_message(&url("a"), 7, other.clone(), t(2)))[..],
            [Action::Close { notify: true, .. }]
        ));
        // A repeated preflight, during the handshake and once open.
        let mut m = mgr("b");
        out!(m.handle_signal(&url("a"), offer(7), t(0)));
        out!(m.handle_message(&url("a"), 7, pf(), t(1)));
        assert_eq!(
            out!(m.handle_message(&url("a"), 7, pf(), t(2))),
            violation("a", 7, "repeated preflight", false)
        );
        let mut m = mgr("b");
        out!(m.handle_signal(&url("a"), offer(7), t(0)));
        finish_handshake(&mut m, "a", 7, t(1));
        assert_eq!(
            out!(m.handle_message(&url("a"), 7, pf(), t(2))),
            violation("a", 7, "repeated preflight", true)
        );
        assert_eq!(m.stats().protocol_closes, 1);
        // Garbage closes; after the preflight, unknown modules and types are only dropped.
        let mut m = mgr("b");
        out!(m.handle_signal(&url("a"), offer(7), t(0)));
        finish_handshake(&mut m, "a", 7, t(1));
        assert_eq!(out!(m.handle_message(&url("a"), 7, other, t(2))), vec![]);
        let unspecified = prost::Message::encode_to_vec(&crate::wire::proto::K2Proto {
            ty: 42,
            ..Default::default()
        });
        assert_eq!(
            out!(m.handle_message(&url("a"), 7, unspecified.into(), t(2))),
            vec![]
        );
        assert_eq!(
            (
                m.stats().dropped_unknown_module,
                m.stats().dropped_unspecified
            ),
            (1, 1)
        );
        assert!(matches!(
            &out!(m.handle_message(&url("a"), 7, Bytes::from_static(&[0xFF, 0xFF]), t(3)))[..],
            [
                Action::Close { notify: true, .. },
                Action::Disconnected { .. }
            ]
        ));
        // A message over the size limit is malformed.
        let mut m = ConnManager::new(
            url("b"),
            NetConfig {
                max_message_bytes: 100,
                chunk_bytes: 100,
                ..NetConfig::default()
            },
        )
        .unwrap();
        out!(m.handle_signal(&url("a"), offer(7), t(0)));
        assert!(matches!(
            &out!(m.handle_message(&url("a"), 7, Bytes::from(vec![0u8; 101]), t(1)))[..],
            [Action::Close { reason, .. }] if reason.contains("malformed")
        ));
    }

    #[test]
    fn the_peers_disconnect_ends_the_connection_and_stale_messages_are_ignored() {
        let mut m = mgr("b");
        out!(m.handle_signal(&url("a"), offer(7), t(0)));
        finish_handshake(&mut m, "a", 7, t(1));
        assert_eq!(
            out!(m.handle_message(&url("a"), 7, crate::wire::encode_disconnect("bye"), t(2))),
            vec![
                Action::Close {
                    peer: url("a"),
                    conn: 7,
                    reason: "closed by peer: bye".into(),
                    notify: false
                },
                disconnected("a", "closed by peer: bye")
            ]
        );
        assert_eq!(out!(m.handle_message(&url("a"), 7, notify(), t(3))), vec![]);
        assert_eq!(out!(m.preflight_sent(&url("a"), 7, t(3))), vec![]);
        assert_eq!(out!(m.violation(&url("a"), 7, "late")), vec![]);
        assert_eq!(m.stats().stale_frames, 1);
    }

    #[test]
    fn a_stalled_handshake_times_out_in_each_state() {
        let why = "timed out waiting for the peer's preflight";
        let closed = |peer: &str, conn| {
            vec![Action::Close {
                peer: url(peer),
                conn,
                reason: why.into(),
                notify: true,
            }]
        };
        // Initiator: channel open, ours sent, theirs never comes.
        let mut m = mgr("a");
        out!(m.connect(&url("b"), 1, t(0)).unwrap());
        out!(m.path_open(&url("b"), 1, t(100)));
        out!(m.preflight_sent(&url("b"), 1, t(101)));
        assert_eq!(out!(m.handle_timeout(t(10_099))), vec![]);
        assert_eq!(out!(m.handle_timeout(t(10_100))), closed("b", 1));
        // Initiator: ours never leaves (the glue's send hangs).
        let mut m = mgr("a");
        out!(m.connect(&url("b"), 1, t(0)).unwrap());
        out!(m.path_open(&url("b"), 1, t(100)));
        out!(m.handle_message(&url("b"), 1, pf(), t(200)));
        assert_eq!(out!(m.handle_timeout(t(10_100))), closed("b", 1));
        // Acceptor: channel open, the initiator's preflight never comes.
        let mut m = mgr("b");
        out!(m.handle_signal(&url("a"), offer(7), t(0)));
        out!(m.path_open(&url("a"), 7, t(50)));
        assert_eq!(out!(m.handle_timeout(t(10_050))), closed("a", 7));
        // Relay initiator: the peer never answers.
        let mut m = ConnManager::new(
            url("a"),
            NetConfig {
                webrtc: false,
                ..NetConfig::default()
            },
        )
        .unwrap();
        out!(m.connect(&url("b"), 1, t(0)).unwrap());
        out!(m.preflight_sent(&url("b"), 1, t(1)));
        assert_eq!(out!(m.handle_timeout(t(10_000))), closed("b", 1));
        assert_eq!(m.stats().timed_out, 1);
    }

    #[test]
    fn close_in_every_state_reports_disconnected_only_once_connected() {
        let closed = |peer: &str, conn| Action::Close {
            peer: url(peer),
            conn,
            reason: "bye".into(),
            notify: true,
        };
        // Negotiating, handshake with ours sent, handshake with theirs received, open.
        let mut m = mgr("a");
        out!(m.connect(&url("b"), 1, t(0)).unwrap());
        assert_eq!(out!(m.close(&url("b"), "bye")), vec![closed("b", 1)]);
        out!(m.connect(&url("b"), 2, t(0)).unwrap());
        out!(m.path_open(&url("b"), 2, t(1)));
        out!(m.preflight_sent(&url("b"), 2, t(1)));
        assert_eq!(out!(m.close(&url("b"), "bye")), vec![closed("b", 2)]);
        out!(m.connect(&url("b"), 3, t(0)).unwrap());
        out!(m.path_open(&url("b"), 3, t(1)));
        out!(m.handle_message(&url("b"), 3, pf(), t(1)));
        assert_eq!(out!(m.close(&url("b"), "bye")), vec![closed("b", 3)]);
        out!(m.connect(&url("b"), 4, t(0)).unwrap());
        finish_handshake(&mut m, "b", 4, t(1));
        assert_eq!(
            out!(m.close(&url("b"), "bye")),
            vec![closed("b", 4), disconnected("b", "bye")]
        );
        // The preflight send completing after the close changes nothing.
        assert_eq!(out!(m.preflight_sent(&url("b"), 4, t(2))), vec![]);
        assert_eq!(out!(m.close(&url("b"), "bye")), vec![]);
    }

    #[test]
    fn local_candidates_wait_for_the_offer_and_are_bounded() {
        let mut m = mgr("a");
        out!(m.connect(&url("b"), 1, t(0)).unwrap());
        let cand = |n: usize| Candidate {
            candidate: format!("c{n}"),
            ..Candidate::default()
        };
        for n in 0..MAX_PENDING_CANDIDATES + 3 {
            assert_eq!(out!(m.local_candidate(&url("b"), 1, cand(n))), vec![]);
        }
        assert_eq!(m.stats().candidates_dropped, 3);
        let sig = |frame| Action::Signal {
            peer: url("b"),
            conn: 1,
            frame,
        };
        let acts = out!(m.local_description(&url("b"), 1, offer(1)));
        assert_eq!(acts.len(), 1 + MAX_PENDING_CANDIDATES);
        assert_eq!(acts[0], sig(offer(1)));
        assert_eq!(
            acts[1],
            sig(SignalFrame::Candidate {
                conn: 1,
                candidate: cand(0)
            })
        );
        // Later ones go at once.
        assert_eq!(
            out!(m.local_candidate(&url("b"), 1, cand(99))),
            vec![sig(SignalFrame::Candidate {
                conn: 1,
                candidate: cand(99)
            })]
        );
    }
}
