//! Connection policy, sans-IO: which connections exist, over which path, and when they
//! start, fall back to the relay, and close.
//!
//! [`ConnManager`] holds one entry per remote peer (keyed by peer URL) and answers every
//! input — an app's wish to reach a peer ([`ConnManager::connect`]), a signal frame from a
//! peer ([`ConnManager::handle_signal`]), progress reported by the platform glue, the clock
//! ([`ConnManager::handle_timeout`]) — with [`Action`]s for the glue to carry out. It owns no
//! peer connection, socket or timer; `webrtc.rs` does the browser side.
//!
//! # Lifecycle of one connection
//!
//! ```text
//!   Negotiating ──path_open──▶ Handshake ──handshake_done──▶ Open
//!   (WebRTC offer/answer/ICE)  (preflights in flight)        (module traffic)
//!        │ timeout (initiator) / NoRtc / relayed data
//!        └──────────────▶ Handshake over the relay
//! ```
//!
//! - The *initiator* picks a random [`ConnId`] and starts over WebRTC (or the relay, when
//!   WebRTC is disabled or the peer connection budget is spent). If the data channel is not
//!   open after [`NetConfig::webrtc_connect_timeout_ms`], it falls back to the relay for the
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
//! # Limits
//!
//! - At most [`NetConfig::max_connections`] entries (default 32); a new one (ours or the
//!   peer's) closes the least recently used.
//! - Open connections without traffic for [`NetConfig::idle_timeout_ms`] close.
//! - At most [`NetConfig::peer_connection_budget`] `RTCPeerConnection`s are ever created
//!   (default 400, below Chromium's limit of 500 per page lifetime, closed ones included:
//!   `libp2p/js-libp2p#2591`, chromium 41378764), and at most
//!   [`NetConfig::peer_connections_per_peer`] with any one peer (default 8: a peer that keeps
//!   re-offering cannot spend the budget). Beyond either, connections are relayed. The
//!   browser glue also caps all transports of one page together
//!   ([`ConnManager::set_page_budget_left`]).

use std::collections::HashMap;

use crate::model::time::Timestamp;
use crate::model::url::Url;
use crate::net::frame::{ConnId, SignalFrame};
use crate::wire::MAX_FRAME_BYTES;

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

/// Tunables of the network layer. Sizes in bytes, times in milliseconds.
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
    /// relay. Default 15 000 (loopback and LAN connect in well under a second; ICE with STUN
    /// takes a few seconds; tx5 waited 45 s).
    pub webrtc_connect_timeout_ms: u64,
    /// How long each side waits, once the path is up, for the peer's preflight. Default
    /// 10 000 (Kitsune2's iroh transport: preflight must be answered within 10 s).
    pub preflight_timeout_ms: u64,
    /// Most simultaneous connections (any phase). Default 32 (y-webrtc 20–34, WebTorrent and
    /// GUN 55 in the wild). At least 1.
    pub max_connections: usize,
    /// Open connections with no message sent or received for this long are closed. Default
    /// 60 000 (Kitsune2's iroh transport: QUIC idle timeout 60 s).
    pub idle_timeout_ms: u64,
    /// Most `RTCPeerConnection`s ever created by this transport, closed ones included.
    /// Default 400: Chromium refuses the 501st of a page's lifetime.
    pub peer_connection_budget: u32,
    /// Most `RTCPeerConnection`s ever created with one peer (ours and its offers). Default 8.
    pub peer_connections_per_peer: u32,
    /// Largest message (one encoded `K2Proto`) sent or accepted. Default
    /// [`MAX_FRAME_BYTES`] (4 MiB); the receive side closes a connection that announces more.
    pub max_message_bytes: usize,
    /// Message bytes per data-channel message (chunk payload). Default 16 384: the size
    /// every browser accepts (interoperable; Chromium measured the same throughput at 16, 64
    /// and 256 KiB). Relayed chunks are sized to the signal path's limit instead.
    pub chunk_bytes: usize,
    /// The sender waits while the data channel's `bufferedAmount` is above this. Default
    /// 1 MiB (Chromium closes the channel past ~16 MB queued).
    pub send_high_water_bytes: u32,
    /// `bufferedAmountLowThreshold`: a waiting sender resumes when the buffer drains to this.
    /// Default 256 KiB.
    pub send_low_water_bytes: u32,
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
            webrtc_connect_timeout_ms: 15_000,
            preflight_timeout_ms: 10_000,
            max_connections: 32,
            idle_timeout_ms: 60_000,
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
    /// Last time a message was sent or received, or the connection changed phase.
    pub last_active: Timestamp,
    /// When its current phase times out (`None` when open: then the idle rule applies).
    pub deadline: Option<Timestamp>,
}

/// What the platform glue must do.
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
}

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
}

impl ConnManager {
    /// A manager for the peer whose own URL is `local`.
    pub fn new(local: Url, config: NetConfig) -> Self {
        ConnManager {
            local,
            config,
            conns: HashMap::new(),
            stats: ConnStats::default(),
            per_peer: HashMap::new(),
            page_left: u32::MAX,
        }
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
    /// enabled and budgeted, else the relay. Returns the connection id and the actions (an
    /// eviction, then the start).
    ///
    /// # Errors
    /// [`ConnError::SelfConnect`], [`ConnError::NotAPeer`].
    pub fn connect(
        &mut self,
        peer: &Url,
        fresh: ConnId,
        now: Timestamp,
    ) -> Result<(ConnId, Vec<Action>), ConnError> {
        if peer == &self.local {
            return Err(ConnError::SelfConnect);
        }
        if !peer.is_peer() {
            return Err(ConnError::NotAPeer(peer.clone()));
        }
        if let Some(c) = self.conns.get_mut(peer) {
            c.last_active = now;
            return Ok((c.conn, Vec::new()));
        }
        let mut actions = self.make_room(now);
        let path = self.choose_path(peer);
        self.insert(peer, fresh, Role::Initiator, path, now, &mut actions);
        Ok((fresh, actions))
    }

    /// A signal frame from `peer` (authenticated by the signal server). Frames for unknown
    /// or old connections are counted and ignored; a frame that starts a connection (offer,
    /// relayed data) applies the glare and capacity rules.
    pub fn handle_signal(&mut self, peer: &Url, frame: SignalFrame, now: Timestamp) -> Vec<Action> {
        let id = frame.conn();
        if peer == &self.local {
            self.stats.stale_frames += 1;
            return Vec::new();
        }
        let current = self.conns.get(peer).cloned();
        let same = current.as_ref().filter(|c| c.conn == id);
        match (&frame, same) {
            // An offer for the connection we already accepted: the glue ignores repeats.
            (SignalFrame::Offer { .. }, Some(c)) if c.role == Role::Acceptor => {
                vec![self.route(peer, id, frame)]
            }
            (SignalFrame::Answer { .. }, Some(c))
                if c.role == Role::Initiator && c.path == Path::WebRtc =>
            {
                vec![self.route(peer, id, frame)]
            }
            (SignalFrame::Candidate { .. }, Some(c)) if c.path == Path::WebRtc => {
                vec![self.route(peer, id, frame)]
            }
            (SignalFrame::NoRtc { .. }, Some(c))
                if c.role == Role::Initiator
                    && c.path == Path::WebRtc
                    && c.phase == Phase::Negotiating =>
            {
                vec![self.fall_back(peer, now)]
            }
            (SignalFrame::Close { reason, .. }, Some(_)) => {
                self.conns.remove(peer);
                vec![Action::Close {
                    peer: peer.clone(),
                    conn: id,
                    reason: format!("closed by peer: {reason}"),
                    notify: false,
                }]
            }
            (SignalFrame::Data { .. }, Some(c)) => match (c.path, c.role, c.phase) {
                (Path::Relay, _, _) => vec![self.route(peer, id, frame)],
                // The peer relays a connection we still negotiate (the acceptor has sent
                // nothing on its data channel before it has the initiator's preflight).
                (Path::WebRtc, Role::Acceptor, Phase::Negotiating | Phase::Handshake)
                | (Path::WebRtc, Role::Initiator, Phase::Negotiating) => {
                    vec![self.fall_back(peer, now), self.route(peer, id, frame)]
                }
                (Path::WebRtc, _, _) => {
                    self.conns.remove(peer);
                    vec![Action::Close {
                        peer: peer.clone(),
                        conn: id,
                        reason: "protocol violation: relayed data on a WebRTC connection".into(),
                        notify: true,
                    }]
                }
            },
            (SignalFrame::Offer { .. } | SignalFrame::Data { .. }, None) => {
                self.incoming(peer, frame, current, now)
            }
            _ => {
                self.stats.stale_frames += 1;
                Vec::new()
            }
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
    ) -> Vec<Action> {
        let id = frame.conn();
        let mut actions = Vec::new();
        match current {
            Some(c) if c.role == Role::Initiator && c.phase != Phase::Open => {
                if self.local.as_str() < peer.as_str() {
                    // Ours wins; the peer accepts it when our offer or data arrives.
                    self.stats.glare_won += 1;
                    return Vec::new();
                }
                self.stats.glare_yielded += 1;
                self.conns.remove(peer);
                actions.push(Action::Close {
                    peer: peer.clone(),
                    conn: c.conn,
                    reason: "superseded by the peer's simultaneous connection".into(),
                    notify: false,
                });
            }
            Some(c) => {
                self.stats.replaced += 1;
                self.conns.remove(peer);
                actions.push(Action::Close {
                    peer: peer.clone(),
                    conn: c.conn,
                    reason: "replaced by a new connection from the peer".into(),
                    notify: false,
                });
            }
            None => actions.extend(self.make_room(now)),
        }
        let path = match frame {
            SignalFrame::Data { .. } => {
                self.stats.relay_only += 1;
                Path::Relay
            }
            _ => self.choose_path(peer),
        };
        self.insert(peer, id, Role::Acceptor, path, now, &mut actions);
        if path == Path::Relay && matches!(frame, SignalFrame::Offer { .. }) {
            actions.push(Action::Reply {
                peer: peer.clone(),
                frame: SignalFrame::NoRtc { conn: id },
            });
        } else {
            actions.push(self.route(peer, id, frame));
        }
        actions
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

    fn insert(
        &mut self,
        peer: &Url,
        conn: ConnId,
        role: Role,
        path: Path,
        now: Timestamp,
        actions: &mut Vec<Action>,
    ) {
        let (phase, deadline) = match (path, role) {
            (Path::Relay, _) => (Phase::Handshake, self.after(now, self.preflight_ms())),
            (Path::WebRtc, Role::Initiator) => (
                Phase::Negotiating,
                self.after(now, self.config.webrtc_connect_timeout_ms),
            ),
            // The acceptor waits for the initiator's data channel or its fallback.
            (Path::WebRtc, Role::Acceptor) => (
                Phase::Negotiating,
                self.after(
                    now,
                    self.config.webrtc_connect_timeout_ms + self.preflight_ms(),
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
                last_active: now,
                deadline,
            },
        );
        actions.push(Action::Start {
            peer: peer.clone(),
            conn,
            role,
            path,
        });
    }

    fn preflight_ms(&self) -> u64 {
        self.config.preflight_timeout_ms
    }

    fn after(&self, now: Timestamp, ms: u64) -> Option<Timestamp> {
        Some(now.add_micros(i64::try_from(ms.saturating_mul(1000)).unwrap_or(i64::MAX)))
    }

    fn route(&self, peer: &Url, conn: ConnId, frame: SignalFrame) -> Action {
        Action::Route {
            peer: peer.clone(),
            conn,
            frame,
        }
    }

    /// Moves the entry of `peer` to the relay (caller checked it is WebRTC and not open).
    fn fall_back(&mut self, peer: &Url, now: Timestamp) -> Action {
        self.stats.fallbacks += 1;
        let deadline = self.after(now, self.preflight_ms());
        let c = self.conns.get_mut(peer).expect("caller checked");
        c.path = Path::Relay;
        c.phase = Phase::Handshake;
        c.deadline = deadline;
        c.last_active = now;
        Action::FallBack {
            peer: peer.clone(),
            conn: c.conn,
        }
    }

    /// Closes the least recently used connection if the table is full.
    fn make_room(&mut self, _now: Timestamp) -> Vec<Action> {
        let mut actions = Vec::new();
        while self.conns.len() >= self.config.max_connections.max(1) {
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
            let c = self.conns.remove(&lru).expect("just found");
            self.stats.evicted += 1;
            actions.push(Action::Close {
                peer: lru,
                conn: c.conn,
                reason: "connection limit: closed the least recently used".into(),
                notify: true,
            });
        }
        actions
    }

    fn matching(&mut self, peer: &Url, conn: ConnId) -> Option<&mut ConnInfo> {
        self.conns.get_mut(peer).filter(|c| c.conn == conn)
    }

    /// The data channel of `conn` opened. Returns false for an unknown or old connection (the
    /// glue then closes what it has).
    pub fn path_open(&mut self, peer: &Url, conn: ConnId, now: Timestamp) -> bool {
        let deadline = self.after(now, self.preflight_ms());
        match self.matching(peer, conn) {
            Some(c) if c.path == Path::WebRtc && c.phase == Phase::Negotiating => {
                c.phase = Phase::Handshake;
                c.deadline = deadline;
                c.last_active = now;
                true
            }
            Some(c) => c.path == Path::WebRtc,
            None => false,
        }
    }

    /// Both preflights of `conn` are exchanged: it is open. Returns false for an unknown or
    /// old connection.
    pub fn handshake_done(&mut self, peer: &Url, conn: ConnId, now: Timestamp) -> bool {
        match self.matching(peer, conn) {
            Some(c) => {
                c.phase = Phase::Open;
                c.deadline = None;
                c.last_active = now;
                true
            }
            None => false,
        }
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
    pub fn webrtc_failed(&mut self, peer: &Url, conn: ConnId, now: Timestamp) -> Vec<Action> {
        let Some(c) = self.matching(peer, conn).cloned() else {
            return Vec::new();
        };
        match (c.path, c.phase, c.role) {
            (Path::WebRtc, Phase::Negotiating, Role::Initiator) => vec![self.fall_back(peer, now)],
            (Path::WebRtc, Phase::Negotiating, Role::Acceptor) | (Path::Relay, _, _) => Vec::new(),
            (Path::WebRtc, _, _) => self.fail(peer, conn, "WebRTC connection failed", true),
        }
    }

    /// The glue found `conn` broken (data channel closed, protocol violation, send failure):
    /// forget it and return the [`Action::Close`] to carry out (none if it is not current).
    pub fn fail(&mut self, peer: &Url, conn: ConnId, reason: &str, notify: bool) -> Vec<Action> {
        if self.matching(peer, conn).is_none() {
            return Vec::new();
        }
        self.conns.remove(peer);
        vec![Action::Close {
            peer: peer.clone(),
            conn,
            reason: reason.to_owned(),
            notify,
        }]
    }

    /// The app closes its connection to `peer` (the peer is told why).
    pub fn close(&mut self, peer: &Url, reason: &str) -> Vec<Action> {
        match self.conns.remove(peer) {
            Some(c) => vec![Action::Close {
                peer: peer.clone(),
                conn: c.conn,
                reason: reason.to_owned(),
                notify: true,
            }],
            None => Vec::new(),
        }
    }

    /// Closes every connection (page hidden, transport shut down), telling each peer.
    pub fn close_all(&mut self, reason: &str) -> Vec<Action> {
        let mut all: Vec<(Url, ConnInfo)> = self.conns.drain().collect();
        all.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        all.into_iter()
            .map(|(peer, c)| Action::Close {
                peer,
                conn: c.conn,
                reason: reason.to_owned(),
                notify: true,
            })
            .collect()
    }

    /// The earliest time [`handle_timeout`](Self::handle_timeout) has something to do.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let idle = self.idle_us();
        self.conns
            .values()
            .map(|c| c.deadline.unwrap_or(c.last_active.add_micros(idle)))
            .min()
    }

    fn idle_us(&self) -> i64 {
        i64::try_from(self.config.idle_timeout_ms.saturating_mul(1000)).unwrap_or(i64::MAX)
    }

    /// Applies every deadline that passed by `now`: initiators still negotiating fall back
    /// to the relay; acceptors still negotiating and handshakes that stalled close; open
    /// connections idle for [`NetConfig::idle_timeout_ms`] close.
    pub fn handle_timeout(&mut self, now: Timestamp) -> Vec<Action> {
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
        due.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        let mut actions = Vec::new();
        for (peer, c) in due {
            match (c.phase, c.role) {
                (Phase::Negotiating, Role::Initiator) => actions.push(self.fall_back(&peer, now)),
                (Phase::Negotiating, Role::Acceptor) | (Phase::Handshake, _) => {
                    self.stats.timed_out += 1;
                    self.conns.remove(&peer);
                    actions.push(Action::Close {
                        peer,
                        conn: c.conn,
                        reason: if c.phase == Phase::Handshake {
                            "timed out waiting for the peer's preflight".into()
                        } else {
                            "timed out waiting for the connection".into()
                        },
                        notify: true,
                    });
                }
                (Phase::Open, _) => {
                    self.stats.idle_closed += 1;
                    self.conns.remove(&peer);
                    actions.push(Action::Close {
                        peer,
                        conn: c.conn,
                        reason: "idle".into(),
                        notify: true,
                    });
                }
            }
        }
        actions
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

    fn mgr(local: &str) -> ConnManager {
        ConnManager::new(url(local), NetConfig::default())
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
        let (id, acts) = m.connect(&url("b"), 1, t(0)).unwrap();
        assert_eq!(id, 1);
        assert_eq!(acts, vec![start("b", 1, Role::Initiator, Path::WebRtc)]);
        let (id, acts) = m.connect(&url("b"), 2, t(5)).unwrap();
        assert_eq!((id, acts), (1, vec![]));
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
        m.connect(&url("b"), 1, t(0)).unwrap();
        let answer = SignalFrame::Answer {
            conn: 1,
            sdp: "x".into(),
        };
        assert_eq!(
            m.handle_signal(&url("b"), answer.clone(), t(1)),
            vec![route("b", 1, answer)]
        );
        assert_eq!(m.poll_timeout(), Some(t(15_000)));
        assert!(m.path_open(&url("b"), 1, t(100)));
        assert_eq!(m.get(&url("b")).unwrap().phase, Phase::Handshake);
        assert_eq!(m.poll_timeout(), Some(t(10_100)));
        assert!(m.handshake_done(&url("b"), 1, t(200)));
        assert_eq!(m.poll_timeout(), Some(t(60_200)));
        m.activity(&url("b"), 1, t(30_000));
        assert_eq!(m.handle_timeout(t(60_200)), vec![]);
        assert_eq!(
            m.handle_timeout(t(90_000)),
            vec![Action::Close {
                peer: url("b"),
                conn: 1,
                reason: "idle".into(),
                notify: true
            }]
        );
        assert!(m.is_empty());
        assert_eq!(m.stats().idle_closed, 1);
        // Late frames for the closed connection are stale.
        assert_eq!(
            m.handle_signal(
                &url("b"),
                SignalFrame::Candidate {
                    conn: 1,
                    candidate: Candidate::default()
                },
                t(90_001)
            ),
            vec![]
        );
        assert_eq!(m.stats().stale_frames, 1);
        assert!(!m.path_open(&url("b"), 1, t(90_002)));
    }

    #[test]
    fn initiator_falls_back_to_relay_after_the_connect_timeout() {
        let mut m = mgr("a");
        m.connect(&url("b"), 1, t(0)).unwrap();
        assert_eq!(m.handle_timeout(t(14_999)), vec![]);
        assert_eq!(
            m.handle_timeout(t(15_000)),
            vec![Action::FallBack {
                peer: url("b"),
                conn: 1
            }]
        );
        let c = m.get(&url("b")).unwrap();
        assert_eq!((c.path, c.phase), (Path::Relay, Phase::Handshake));
        // Relayed data now routes; a late answer is stale.
        assert_eq!(
            m.handle_signal(&url("b"), data(1), t(15_001)),
            vec![route("b", 1, data(1))]
        );
        let late = SignalFrame::Answer {
            conn: 1,
            sdp: "x".into(),
        };
        assert_eq!(m.handle_signal(&url("b"), late, t(15_002)), vec![]);
        // The handshake has its own deadline.
        assert_eq!(
            m.handle_timeout(t(25_000)),
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
        m.connect(&url("b"), 1, t(0)).unwrap();
        assert_eq!(
            m.handle_signal(&url("b"), SignalFrame::NoRtc { conn: 1 }, t(3)),
            vec![Action::FallBack {
                peer: url("b"),
                conn: 1
            }]
        );
        // A second one is stale (no longer negotiating).
        assert_eq!(
            m.handle_signal(&url("b"), SignalFrame::NoRtc { conn: 1 }, t(4)),
            vec![]
        );
    }

    #[test]
    fn a_webrtc_failure_falls_back_early_or_closes() {
        let mut m = mgr("a");
        m.connect(&url("b"), 1, t(0)).unwrap();
        assert_eq!(
            m.webrtc_failed(&url("b"), 1, t(50)),
            vec![Action::FallBack {
                peer: url("b"),
                conn: 1
            }]
        );
        // Once relayed, later WebRTC failures of that connection change nothing.
        assert_eq!(m.webrtc_failed(&url("b"), 1, t(51)), vec![]);
        // The acceptor waits; an open WebRTC connection closes.
        let mut b = mgr("b");
        b.handle_signal(&url("a"), offer(7), t(0));
        assert_eq!(b.webrtc_failed(&url("a"), 7, t(1)), vec![]);
        b.path_open(&url("a"), 7, t(2));
        b.handshake_done(&url("a"), 7, t(3));
        assert_eq!(
            b.webrtc_failed(&url("a"), 7, t(4)),
            vec![Action::Close {
                peer: url("a"),
                conn: 7,
                reason: "WebRTC connection failed".into(),
                notify: true
            }]
        );
        assert_eq!(b.webrtc_failed(&url("a"), 7, t(5)), vec![]);
    }

    #[test]
    fn acceptor_follows_the_offer_and_the_peers_fallback() {
        let mut m = mgr("b");
        assert_eq!(
            m.handle_signal(&url("a"), offer(7), t(0)),
            vec![
                start("a", 7, Role::Acceptor, Path::WebRtc),
                route("a", 7, offer(7))
            ]
        );
        assert_eq!(m.poll_timeout(), Some(t(25_000)));
        // Its data channel opened, but the initiator's did not: it relays its preflight.
        assert!(m.path_open(&url("a"), 7, t(10)));
        assert_eq!(
            m.handle_signal(&url("a"), data(7), t(15_000)),
            vec![
                Action::FallBack {
                    peer: url("a"),
                    conn: 7
                },
                route("a", 7, data(7))
            ]
        );
        assert!(m.handshake_done(&url("a"), 7, t(15_001)));
        // Once open, relayed data is simply routed.
        assert_eq!(
            m.handle_signal(&url("a"), data(7), t(15_002)),
            vec![route("a", 7, data(7))]
        );
    }

    #[test]
    fn relayed_data_on_an_open_webrtc_connection_is_a_violation() {
        let mut m = mgr("b");
        m.handle_signal(&url("a"), offer(7), t(0));
        m.path_open(&url("a"), 7, t(1));
        m.handshake_done(&url("a"), 7, t(2));
        assert_eq!(
            m.handle_signal(&url("a"), data(7), t(3)),
            vec![Action::Close {
                peer: url("a"),
                conn: 7,
                reason: "protocol violation: relayed data on a WebRTC connection".into(),
                notify: true
            }]
        );
    }

    #[test]
    fn acceptor_gives_up_when_the_initiator_vanishes() {
        let mut m = mgr("b");
        m.handle_signal(&url("a"), offer(7), t(0));
        assert_eq!(
            m.handle_timeout(t(25_000)),
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
            m.handle_signal(&url("a"), data(9), t(0)),
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
        );
        assert_eq!(
            m.connect(&url("c"), 1, t(0)).unwrap().1,
            vec![start("c", 1, Role::Initiator, Path::Relay)]
        );
        assert_eq!(
            m.handle_signal(&url("a"), offer(7), t(0)),
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
            m.handle_signal(&url("a"), data(7), t(1)),
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
        );
        let paths: Vec<Path> = (0..4)
            .map(
                |i| match &m.connect(&url(&format!("p{i}")), i, t(0)).unwrap().1[0] {
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
            m.handle_signal(&url("q"), offer(50), t(0))[1],
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
        );
        // A hostile peer re-offers with fresh ids: each replaces the last, two get WebRTC.
        let paths: Vec<Action> = (0..4)
            .map(|i| {
                m.handle_signal(&url("evil"), offer(i), t(i as i64))
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
        let start_path = |acts: Vec<Action>| match acts.last() {
            Some(Action::Start { path, .. }) => *path,
            a => panic!("{a:?}"),
        };
        assert_eq!(
            start_path(m.connect(&url("b"), 10, t(9)).unwrap().1),
            Path::WebRtc
        );
        m.set_page_budget_left(0);
        assert_eq!(m.peer_connections_left(), 0);
        assert_eq!(
            start_path(m.connect(&url("c"), 11, t(9)).unwrap().1),
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
        );
        for (i, p) in ["p1", "p2", "p3"].into_iter().enumerate() {
            m.connect(&url(p), i as u64, t(i as i64)).unwrap();
        }
        m.activity(&url("p1"), 0, t(10)); // p2 is now the least recently used
        let (_, acts) = m.connect(&url("p4"), 4, t(11)).unwrap();
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
        let acts = m.handle_signal(&url("p5"), offer(5), t(12));
        assert!(matches!(&acts[0], Action::Close { peer, .. } if peer == &url("p3")));
        assert_eq!(m.len(), 3);
        assert_eq!(m.stats().evicted, 2);
    }

    #[test]
    fn glare_is_resolved_by_the_smaller_url_on_both_sides() {
        // a < b: a's connection (1) wins, b's (2) yields. Run both sides.
        let mut a = mgr("a");
        let mut b = mgr("b");
        a.connect(&url("b"), 1, t(0)).unwrap();
        b.connect(&url("a"), 2, t(0)).unwrap();

        // a gets b's offer: ignores it.
        assert_eq!(a.handle_signal(&url("b"), offer(2), t(1)), vec![]);
        assert_eq!(a.get(&url("b")).unwrap().conn, 1);
        assert_eq!(a.stats().glare_won, 1);

        // b gets a's offer: abandons 2, accepts 1.
        assert_eq!(
            b.handle_signal(&url("a"), offer(1), t(1)),
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
        assert_eq!(a.handle_signal(&url("b"), stale, t(2)), vec![]);
    }

    #[test]
    fn glare_between_relay_only_peers_is_resolved_the_same_way() {
        let cfg = NetConfig {
            webrtc: false,
            ..NetConfig::default()
        };
        let mut a = ConnManager::new(url("a"), cfg.clone());
        let mut b = ConnManager::new(url("b"), cfg);
        a.connect(&url("b"), 1, t(0)).unwrap();
        b.connect(&url("a"), 2, t(0)).unwrap();
        assert_eq!(a.handle_signal(&url("b"), data(2), t(1)), vec![]);
        let acts = b.handle_signal(&url("a"), data(1), t(1));
        assert_eq!(
            acts[1..],
            [
                start("a", 1, Role::Acceptor, Path::Relay),
                route("a", 1, data(1))
            ]
        );
    }

    #[test]
    fn a_new_connection_from_a_peer_replaces_an_open_one() {
        let mut m = mgr("a");
        m.connect(&url("b"), 1, t(0)).unwrap();
        m.path_open(&url("b"), 1, t(1));
        m.handshake_done(&url("b"), 1, t(2));
        // Even though a < b, an open connection is not in glare: b must have dropped it.
        let acts = m.handle_signal(&url("b"), offer(3), t(3));
        assert_eq!(
            acts,
            vec![
                Action::Close {
                    peer: url("b"),
                    conn: 1,
                    reason: "replaced by a new connection from the peer".into(),
                    notify: false
                },
                start("b", 3, Role::Acceptor, Path::WebRtc),
                route("b", 3, offer(3))
            ]
        );
        assert_eq!(m.stats().replaced, 1);
    }

    #[test]
    fn role_mismatched_and_stale_frames_are_ignored() {
        let mut m = mgr("a");
        m.connect(&url("b"), 1, t(0)).unwrap();
        // An offer echoing our own initiator id, an answer to nothing, NoRtc/close for
        // other ids, frames "from" ourselves.
        assert_eq!(m.handle_signal(&url("b"), offer(1), t(1)), vec![]);
        let answer = SignalFrame::Answer {
            conn: 9,
            sdp: String::new(),
        };
        assert_eq!(m.handle_signal(&url("c"), answer, t(1)), vec![]);
        assert_eq!(
            m.handle_signal(&url("b"), SignalFrame::NoRtc { conn: 2 }, t(1)),
            vec![]
        );
        let close = SignalFrame::Close {
            conn: 2,
            reason: "x".into(),
        };
        assert_eq!(m.handle_signal(&url("b"), close, t(1)), vec![]);
        assert_eq!(m.handle_signal(&url("a"), offer(5), t(1)), vec![]);
        assert_eq!(m.stats().stale_frames, 5);
        assert_eq!(m.get(&url("b")).unwrap().conn, 1);
    }

    #[test]
    fn peer_close_app_close_and_close_all() {
        let mut m = mgr("a");
        m.connect(&url("b"), 1, t(0)).unwrap();
        m.connect(&url("c"), 2, t(0)).unwrap();
        m.connect(&url("d"), 3, t(0)).unwrap();
        let close = SignalFrame::Close {
            conn: 1,
            reason: "bye".into(),
        };
        assert_eq!(
            m.handle_signal(&url("b"), close, t(1)),
            vec![Action::Close {
                peer: url("b"),
                conn: 1,
                reason: "closed by peer: bye".into(),
                notify: false
            }]
        );
        assert_eq!(
            m.close(&url("c"), "done"),
            vec![Action::Close {
                peer: url("c"),
                conn: 2,
                reason: "done".into(),
                notify: true
            }]
        );
        assert_eq!(m.close(&url("c"), "again"), vec![]);
        assert_eq!(m.fail(&url("d"), 99, "old", true), vec![]);
        assert_eq!(
            m.close_all("pagehide"),
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
}
