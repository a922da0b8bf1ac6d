//! A browser peer: one agent identity (ed25519 key) that joins spaces. Each joined space gets
//! its own sbd connection (its peer URL), WebRTC transport, op store and [`run_space`] task,
//! plus a bootstrap task that PUTs the space's signed agent infos and polls for peers.
//! Platform glue only: every protocol rule lives in the sans-IO modules it wires.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use bytes::Bytes;
use futures::channel::{mpsc, oneshot};
use futures::future::{LocalBoxFuture, Shared};
use futures::{FutureExt, StreamExt};
use wasm_bindgen_futures::spawn_local;

use crate::api::HeldOpsQuery;
use crate::api::transport::{Transport, TransportError, TransportEvent};
use crate::api::{MetaOp, OpStore, StoreError};
use crate::browser::bootstrap as fetch;
use crate::browser::clock::{BrowserClock, sleep_ms};
use crate::browser::idb::{IdbOpStore, IdbOptions};
use crate::browser::lifecycle::Lifecycle;
use crate::browser::sbd_reconnect::{LinkEvent, LinkEvents, LinkStatus, ReconnectingSignal};
use crate::browser::sbd_signal::SbdSignalError;
use crate::browser::webrtc::{NetStats, SpaceTransport, WebRtcTransport, closed_by_departed_peer};
use crate::core::bootstrap::{BootstrapClient, PollSchedule, PutAgain, PutOutcome};
use crate::core::membership::MembershipConfig;
pub use crate::core::peer_view::Liveness;
use crate::core::peer_view::PeerView;
use crate::core::space::{
    Command, JoinError as SpaceJoinError, NotifyFailed, Space, SpaceConfig, SpaceEvent, Summary,
    run_space,
};
use crate::hash::{HashMap, HashSet};
use crate::model::agent::{AgentInfo, AgentInfoSigned, AgentKey, Ed25519Verifier};
use crate::model::arc::DhtArc;
use crate::model::config::ConfigError;
use crate::model::id::{AgentId, OpId, SpaceId};
use crate::model::op::Op;
use crate::model::time::Timestamp;
use crate::model::url::Url;
use crate::net::conn::{NetConfig, Path, Phase};
use crate::net::reconnect::{LinkState, ReconnectConfig};
use crate::net::sbd::SbdConfig;
use crate::sort;
use crate::store::MemOpStore;
use crate::wire::WireMessage;

/// Where a peer keeps its ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Storage {
    /// IndexedDB, one database per agent and space ([`IdbOpStore`]). The default.
    #[default]
    IndexedDb,
    /// Memory only ([`MemOpStore`]); gone with the page.
    Memory,
}

/// How a peer reaches the network.
#[derive(Debug, Clone)]
pub struct PeerOptions {
    /// Kitsune2 bootstrap server, `http(s)://host:port`.
    pub bootstrap: BootstrapClient,
    /// sbd signal/relay server, `ws(s)://host:port`.
    pub signal_url: String,
    /// Op storage.
    pub storage: Storage,
    /// WebRTC and connection limits.
    pub net: NetConfig,
    /// Bootstrap polling and back-off.
    pub poll: PollSchedule,
    /// sbd reconnect back-off and the offline rule.
    pub reconnect: ReconnectConfig,
    /// SWIM timing of every space this peer joins (probe period, suspicion timeouts).
    pub membership: MembershipConfig,
}

/// Why [`BrowserPeer::join`] failed.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The sbd signal server could not be reached or refused us (URL in the message).
    #[error("signal server {url}: {source}")]
    Signal {
        /// The signal server URL.
        url: String,
        /// What went wrong.
        source: SbdSignalError,
    },
    /// The op store could not be opened.
    #[error("op store: {0}")]
    Store(#[from] StoreError),
    /// The network options are invalid (the field is named).
    #[error("network options: {0}")]
    Config(#[from] ConfigError),
    /// The space could not start (its first agent info could not be signed).
    #[error("joining: {0}")]
    Space(#[from] SpaceJoinError),
}

/// One identity that joins spaces.
pub struct BrowserPeer {
    key: AgentKey,
    options: PeerOptions,
}

impl BrowserPeer {
    /// A peer with `key` (see `js::keystore` for the persisted per-origin key).
    pub fn new(key: AgentKey, options: PeerOptions) -> Self {
        Self { key, options }
    }

    /// This peer's agent id (its ed25519 public key).
    pub fn agent(&self) -> AgentId {
        self.key.agent_id()
    }

    /// Joins `space` with storage arc `arc`: connects to the sbd server, opens the store,
    /// signs the agent info and starts syncing.
    ///
    /// The first sbd connection must succeed; a later loss is retried on
    /// [`PeerOptions::reconnect`] and reported as [`Event::Status`] and [`Event::Failure`].
    /// An unreachable bootstrap server does not fail the join: it is reported as
    /// [`Failure::Bootstrap`] (peers may still find us through others).
    ///
    /// # Errors
    /// [`JoinError`]: the step that failed (signal server, store, options, signing).
    pub async fn join(&self, space: SpaceId, arc: DhtArc) -> Result<Rc<BrowserSpace>, JoinError> {
        let (signal, rx, link_events) = ReconnectingSignal::connect(
            &self.options.signal_url,
            SbdConfig::default(),
            self.options.reconnect.clone(),
            random_seed(),
        )
        .await
        .map_err(|source| JoinError::Signal {
            url: self.options.signal_url.clone(),
            source,
        })?;
        let link = Rc::new(signal);
        let (net, net_events) = WebRtcTransport::new(link.clone(), rx, self.options.net.clone())?;
        let url = net.local_url().clone();
        let store: Rc<dyn OpStore> = match self.options.storage {
            Storage::Memory => Rc::new(MemOpStore::new(crate::browser::clock::now)),
            Storage::IndexedDb => {
                Rc::new(IdbOpStore::open(&space, &self.agent(), IdbOptions::default()).await?)
            }
        };
        let mut cfg = SpaceConfig::new(space.clone());
        cfg.storage_arc = arc;
        cfg.membership = self.options.membership.clone();
        let core = Space::new(
            cfg,
            Box::new(self.key.clone()),
            self.agent(),
            Some(url.clone()),
            crate::browser::clock::now(),
            random_seed(),
        )?;
        let info = core.local_agent_info().clone();
        net.set_local_agents(std::slice::from_ref(&info));
        let (news_tx, news_rx) = mpsc::unbounded();
        let transport = Rc::new(CountingTransport::new(
            SpaceTransport::new(net.clone(), net_events),
            news_tx,
        ));
        let (commands, command_rx) = mpsc::unbounded();
        let (event_tx, event_rx) = mpsc::unbounded();
        let (stopped_tx, stopped_rx) = oneshot::channel::<()>();
        let joined = Rc::new(BrowserSpace {
            space,
            agent: self.agent(),
            url,
            net,
            link,
            key: self.key.clone(),
            on_pagehide: RefCell::default(),
            bootstrap: self.options.bootstrap.clone(),
            bootstrap_ok: Cell::new(true),
            unannounced: RefCell::default(),
            local_info: RefCell::default(),
            puts_started: Cell::new(0),
            last_put: Cell::new(PutOutcome::Pending),
            commands,
            store: store.clone(),
            transport: transport.clone(),
            listeners: RefCell::default(),
            peers: RefCell::default(),
            lifecycle: RefCell::default(),
            running: Cell::new(true),
            stopped: stopped_rx.shared(),
        });
        spawn_local(async move {
            run_space(
                core,
                &*store,
                &*transport,
                &BrowserClock,
                command_rx,
                event_tx,
            )
            .await;
            // `leave` waits for this: the driver returned (after the tombstone went out).
            let _ = stopped_tx.send(());
        });
        // Put our info at once. The space's own `LocalAgentInfo` event (which puts it too,
        // and is then skipped as already put) comes only once the driver has built the DHT
        // model from the store: 4-5 s after join with 8 tabs starting together, and no peer
        // finds us before bootstrap has the info.
        *joined.local_info.borrow_mut() = Some(info.clone());
        spawn_local(put_with_retry(
            joined.clone(),
            self.options.bootstrap.clone(),
            info,
        ));
        *joined.lifecycle.borrow_mut() = Lifecycle::watch(Rc::downgrade(&joined));
        spawn_local(dispatch_events(
            joined.clone(),
            event_rx,
            self.options.bootstrap.clone(),
        ));
        spawn_local(watch_link(joined.clone(), link_events));
        spawn_local(watch_departures(joined.clone(), news_rx));
        joined.depart_on_pagehide();
        spawn_local(poll_bootstrap(
            joined.clone(),
            self.options.bootstrap.clone(),
            self.options.poll.clone(),
        ));
        Ok(joined)
    }
}

/// What a joined space reports: the space's own events, the signal link's status, and
/// failures of the servers it uses.
#[derive(Debug)]
pub enum Event {
    /// An event of the space ([`SpaceEvent`]).
    Space(SpaceEvent),
    /// The sbd link's state changed or a retry was planned.
    Status(LinkStatus),
    /// A server failed.
    Failure(Failure),
}

/// A server failure (the JS `error` event kinds `"bootstrap"` and `"signal"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A bootstrap PUT or poll failed (server unreachable or refusing); reported once per
    /// streak of failures, again after a success.
    Bootstrap(String),
    /// The sbd connection was lost, or retries keep failing ([`LinkEvent::Failed`]).
    Signal(String),
}

/// A JS event listener owned by Rust.
type EventClosure = wasm_bindgen::closure::Closure<dyn FnMut(web_sys::Event)>;

/// A callback for space events.
pub type Listener = Rc<dyn Fn(&Event)>;

/// Tries of one PUT of our agent info to an unreachable bootstrap server (about 4 min of
/// back-off in all); a later poll that finds the server lacking it puts it again.
const PUT_TRIES: u32 = 8;

/// Most local ops remembered for announcing again after an outage; beyond that, catch-up
/// spreads them.
const MAX_UNANNOUNCED: usize = 10_000;

/// After the link came back, announcing the ops still unannounced is tried at most this
/// many times, the pause doubling from [`REANNOUNCE_FIRST_PAUSE_MS`] (0, 2, 6, 14, 30 s after
/// the reconnect): peers reconnect to the server on their own back-off, and a connection
/// attempt to one that is not back yet fails only after the connect timeout.
const REANNOUNCE_TRIES: u32 = 5;
/// See [`REANNOUNCE_TRIES`].
const REANNOUNCE_FIRST_PAUSE_MS: i64 = 2_000;

/// A joined space in this page.
pub struct BrowserSpace {
    space: SpaceId,
    agent: AgentId,
    url: Url,
    net: WebRtcTransport,
    link: Rc<ReconnectingSignal>,
    /// Our agent key: the tombstone of a closing page is signed at once, in `pagehide`.
    key: AgentKey,
    /// The `pagehide` listener ([`Self::depart_on_pagehide`]).
    on_pagehide: RefCell<Option<EventClosure>>,
    bootstrap: BootstrapClient,
    /// No bootstrap failure since the last success (a failure is reported when this is set).
    bootstrap_ok: Cell<bool>,
    /// Local ops whose announcement failed or was not tried because the link was down.
    unannounced: RefCell<HashSet<OpId>>,
    /// Our newest signed agent info (put to bootstrap again after a reconnect, or when a
    /// poll shows the server lost it: [`PutAgain`]).
    local_info: RefCell<Option<AgentInfoSigned>>,
    /// PUTs of our info started so far; only the latest records its outcome.
    puts_started: Cell<u64>,
    /// The outcome of the latest PUT of our info ([`put_with_retry`]).
    last_put: Cell<PutOutcome>,
    commands: mpsc::UnboundedSender<Command>,
    store: Rc<dyn OpStore>,
    transport: Rc<CountingTransport<SpaceTransport>>,
    listeners: RefCell<Vec<Listener>>,
    peers: RefCell<PeerView>,
    /// The page lifecycle listeners (Window scopes); dropped when the space stops.
    lifecycle: RefCell<Option<Lifecycle>>,
    running: Cell<bool>,
    /// Resolves when the space's driver task returned (or was dropped).
    stopped: Shared<oneshot::Receiver<()>>,
}

/// Figures of a joined space.
#[derive(Debug, Clone)]
pub struct BrowserSpaceStats {
    /// Ops held in the store.
    pub ops: u64,
    /// Bytes of those ops (encoded).
    pub op_bytes: u64,
    /// K2 frame bytes sent to peers.
    pub tx_bytes: u64,
    /// K2 frame bytes received from peers.
    pub rx_bytes: u64,
    /// `rx_bytes` split by message kind ([`RX_KINDS`] order: publish, fetch, gossip,
    /// membership, notify): where a sync's bytes went.
    pub rx_bytes_by_kind: [u64; 5],
    /// Known peer agents.
    pub peers: usize,
    /// Open or opening connections.
    pub connections: usize,
    /// The space's transport counters (malformed signal frames, protocol closes, stale
    /// frames, ...): how this peer dealt with what others sent it.
    pub net: NetStats,
    /// The sbd link's status.
    pub status: LinkStatus,
    /// Local ops waiting to be announced again when the link is back.
    pub unannounced: usize,
    /// The gossip summary and the space's counters (ops served, pushed, taken), taken in one
    /// step of the space; `None` once the space's driver stopped.
    pub summary: Option<Summary>,
}

impl BrowserSpace {
    /// The space id.
    pub fn space_id(&self) -> &SpaceId {
        &self.space
    }

    /// Our agent in this space.
    pub fn agent(&self) -> &AgentId {
        &self.agent
    }

    /// Our peer URL in this space (`ws://host:port/<sbd pubkey>`).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Adds a listener for every [`SpaceEvent`].
    pub fn subscribe(&self, listener: Listener) {
        self.listeners.borrow_mut().push(listener);
    }

    /// Removes a listener added with [`Self::subscribe`] (same `Rc`).
    pub fn unsubscribe(&self, listener: &Listener) {
        self.listeners
            .borrow_mut()
            .retain(|l| !Rc::ptr_eq(l, listener));
    }

    /// Publishes `op`; resolves with its id once the store committed it (it is announced to
    /// the peers responsible for it afterwards). Settled by this publish's own outcome
    /// ([`crate::core::space::PublishToken`]), not by other store operations.
    ///
    /// # Errors
    /// The space was left or stopped, or the store write of this op failed.
    pub async fn publish(&self, op: Op) -> Result<OpId, String> {
        let (reply, outcome) = oneshot::channel();
        self.command(Command::PublishOp(op, reply))?;
        match outcome.await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(oneshot::Canceled) => Err("the space stopped".into()),
        }
    }

    /// Publishes `ops` in one store write (one IndexedDB transaction: the commands are queued
    /// before the space's task runs, and it takes every queued command at once); resolves
    /// with their ids, in order, once the write committed.
    ///
    /// # Errors
    /// As [`Self::publish`]; the write is all or nothing, so is the result.
    pub async fn publish_many(&self, ops: Vec<Op>) -> Result<Vec<OpId>, String> {
        let mut outcomes = Vec::with_capacity(ops.len());
        for op in ops {
            let (reply, outcome) = oneshot::channel();
            self.command(Command::PublishOp(op, reply))?;
            outcomes.push(outcome);
        }
        // Awaited in order, not with `join_all`: one write settles them all together, so
        // this is as quick, and it keeps `join_all`'s `FuturesOrdered` (over 30 futures)
        // and its task per op out of the module (-6.3 KB raw, -2.0 KB gzip).
        let mut ids = Vec::with_capacity(outcomes.len());
        for outcome in outcomes {
            match outcome.await {
                Ok(r) => ids.push(r.map_err(|e| e.to_string())?),
                Err(oneshot::Canceled) => return Err("the space stopped".into()),
            }
        }
        Ok(ids)
    }

    /// Sends `data` to peer agent `to` (Kitsune2's `send_notify`, best effort): resolves once
    /// the transport took it, not when the peer read it.
    ///
    /// # Errors
    /// [`NotifyFailed`]; `Err(None)` when the space was left or stopped.
    pub async fn send(&self, to: AgentId, data: Bytes) -> Result<(), Option<NotifyFailed>> {
        let (reply, outcome) = oneshot::channel();
        self.command(Command::Notify(to, data, reply))
            .map_err(|_| None)?;
        match outcome.await {
            Ok(r) => r.map_err(Some),
            Err(oneshot::Canceled) => Err(None),
        }
    }

    /// The op with `id`: from the store, or if the store lacks it, from the network
    /// ([`Space::get_remote`](crate::core::space::Space::get_remote): for an op outside our
    /// storage arc, or any while we are catching up, asked of up to `GET_PEERS` peers whose
    /// arcs hold it, `None` after `GET_TIMEOUT` without an answer; not stored).
    ///
    /// # Errors
    /// The store's error; `Err(None)` when the space was left or stopped.
    pub async fn get(&self, id: OpId) -> Result<Option<Op>, Option<StoreError>> {
        let found = self.store.retrieve_ops(vec![id.clone()]).await?;
        let Some(m) = found.into_iter().next() else {
            let (reply, outcome) = oneshot::channel();
            self.command(Command::Get(id, reply)).map_err(|_| None)?;
            return outcome.await.map_err(|oneshot::Canceled| None);
        };
        decode_stored(m).map(|(_, op)| Some(op)).map_err(Some)
    }

    /// The ops this peer's store holds that `q` asks for, as `(id, op)` in its order
    /// ([`OpStore::retrieve_held_op_ids`], then one read of those ops). Only what is stored
    /// (an app's history after a reload); the network is not asked.
    ///
    /// # Errors
    /// The store's error ([`StoreError::Decode`] for a held op that does not decode).
    pub async fn held_ops(&self, q: &HeldOpsQuery) -> Result<Vec<(OpId, Op)>, StoreError> {
        let ids = self.store.retrieve_held_op_ids(q.clone()).await?;
        let found = self.store.retrieve_ops(ids).await?;
        found.into_iter().map(decode_stored).collect()
    }

    /// Known live peer agents (joined, not reported down or left), their URLs, liveness,
    /// connection path (`None` when no connection to them is open) and storage arcs; by
    /// agent id.
    pub fn peers(&self) -> Vec<PeerEntry> {
        let view = self.peers.borrow();
        let mut v: Vec<PeerEntry> = view
            .iter()
            .map(|(a, url, state)| PeerEntry {
                arc: view.arc(a),
                agent: a.clone(),
                url: url.clone(),
                state,
                path: url
                    .as_ref()
                    .and_then(|u| self.net.connection(u))
                    .filter(|c| c.phase == Phase::Open)
                    .map(|c| c.path),
            })
            .collect();
        sort::sort_by(&mut v, |a, b| a.agent.cmp(&b.agent)); // one entry per agent
        v
    }

    /// Tells the space's members this tab is hidden (`true`) or visible
    /// ([`Command::SetDozing`]); ignored once the space was left.
    pub fn set_dozing(&self, hidden: bool) {
        let _ = self.command(Command::SetDozing(hidden));
    }

    /// The tab runs again after a freeze or the back/forward cache ([`Command::Resume`]: a
    /// renewed membership identity announces itself); ignored once the space was left.
    pub fn resume(&self) {
        let _ = self.command(Command::Resume);
    }

    /// Ops held, bytes moved, peers known.
    ///
    /// # Errors
    /// The store's error.
    pub async fn stats(&self) -> Result<BrowserSpaceStats, StoreError> {
        let totals = self.store.query_totals().await?;
        let (tx, rx) = oneshot::channel();
        let summary = match self.command(Command::Summary(tx)) {
            Ok(()) => rx.await.ok(),
            Err(_) => None,
        };
        Ok(BrowserSpaceStats {
            summary,
            ops: totals.op_count,
            op_bytes: totals.op_bytes,
            tx_bytes: self.transport.tx.get(),
            rx_bytes: self.transport.rx.get(),
            rx_bytes_by_kind: self.transport.rx_by_kind.get(),
            peers: self.peers.borrow().len(),
            connections: self.net.connection_count(),
            net: self.net.stats(),
            status: self.link.status(),
            unannounced: self.unannounced.borrow().len(),
        })
    }

    /// Leaves: signs a tombstone (sent to peers and the bootstrap server), waits until the
    /// space's driver returned (the tombstone went out), then stops.
    pub async fn leave(&self) {
        if self.command(Command::Leave).is_err() {
            return;
        }
        // Resolves (Ok, or Canceled if the task was dropped) once `run_space` returned.
        let _ = self.stopped.clone().await;
        self.stop();
    }

    fn stop(&self) {
        self.running.set(false);
        if let (Some(w), Some(c)) = (web_sys::window(), self.on_pagehide.borrow_mut().take()) {
            use wasm_bindgen::JsCast;
            let _ = w.remove_event_listener_with_callback("pagehide", c.as_ref().unchecked_ref());
        }
        self.lifecycle.borrow_mut().take();
        self.commands.close_channel();
        self.net.close_all("left the space");
        self.link.close();
        self.store.close();
    }

    fn command(&self, c: Command) -> Result<(), String> {
        if !self.running.get() {
            return Err("the space was left".into());
        }
        self.commands
            .unbounded_send(c)
            .map_err(|_| "the space stopped".to_string())
    }

    fn emit(&self, e: &Event) {
        let listeners = self.listeners.borrow().clone();
        for l in listeners {
            l(e);
        }
    }
}

async fn dispatch_events(
    space: Rc<BrowserSpace>,
    mut events: mpsc::UnboundedReceiver<SpaceEvent>,
    bootstrap: BootstrapClient,
) {
    while let Some(e) = events.next().await {
        match &e {
            SpaceEvent::LocalAgentInfo(info) => {
                space.net.set_local_agents(std::slice::from_ref(info));
                let already_put =
                    space.local_info.replace(Some(info.clone())).as_ref() == Some(info);
                if !already_put {
                    spawn_local(put_with_retry(
                        space.clone(),
                        bootstrap.clone(),
                        info.clone(),
                    ));
                }
            }
            SpaceEvent::OpStored { op_id, .. }
                if space.link.status().state != LinkState::Connected =>
            {
                space.remember_unannounced(op_id);
            }
            SpaceEvent::Published {
                op_id,
                reached,
                failed,
            } => {
                if failed.is_empty() && !reached.is_empty() {
                    space.unannounced.borrow_mut().remove(op_id);
                } else if !failed.is_empty() {
                    space.remember_unannounced(op_id);
                }
            }
            SpaceEvent::Left => space.running.set(false),
            _ => {}
        }
        // One report per change: a peer already reported back or gone by
        // [`watch_departures`] is not reported again by the space's own event.
        if space.peers.borrow_mut().track(&e) {
            space.emit(&Event::Space(e));
        }
    }
    space.running.set(false);
    space.lifecycle.borrow_mut().take();
}

/// One entry of [`BrowserSpace::peers`].
#[derive(Debug, Clone)]
pub struct PeerEntry {
    /// The agent.
    pub agent: AgentId,
    /// Its URL, if its agent info has one.
    pub url: Option<Url>,
    /// Its liveness.
    pub state: Liveness,
    /// The path of the open connection to it, if any.
    pub path: Option<Path>,
    /// Its storage arc from its latest agent info; `None` while only membership knows it.
    pub arc: Option<DhtArc>,
}

/// What the transport tells the glue about peers' pages.
pub enum PeerNews {
    /// The connection with this URL closed because the peer's page closed.
    Departed(Url),
    /// A connection opened; these verified live agents are at that URL (its preflight).
    Connected(Url, Vec<AgentId>),
}

/// Peers whose connection closed because their page closed (the transport's
/// `closed_by_departed_peer`): every agent at that URL is reported left at once and leaves
/// `peers()`, without waiting for its tombstone from the bootstrap server (whose later
/// `PeerLeft` is then not reported twice). Such an agent that connects again (the page was
/// reloaded: same agent, new URL; the space sees only a newer info, no join) is reported
/// `joined` again.
async fn watch_departures(space: Rc<BrowserSpace>, mut news: mpsc::UnboundedReceiver<PeerNews>) {
    while let Some(n) = news.next().await {
        match n {
            PeerNews::Departed(url) => {
                let gone = space.peers.borrow_mut().depart_at(&url);
                for agent in gone {
                    space.emit(&Event::Space(SpaceEvent::PeerLeft { agent }));
                }
            }
            PeerNews::Connected(url, agents) => {
                for agent in agents {
                    if space.peers.borrow_mut().reconnected(&agent, &url) {
                        let url = Some(url.clone());
                        space.emit(&Event::Space(SpaceEvent::PeerJoined { agent, url }));
                    }
                }
            }
        }
    }
}

impl BrowserSpace {
    /// Registers the `pagehide` listener that leaves the space when the page is discarded
    /// (`persisted` false): the tombstone is signed at once and put to the bootstrap server
    /// with a keepalive `fetch` (it outlives the page), then the space is asked to leave
    /// (best effort: the page may be gone first). Peers with an open connection learn it
    /// from the transport's DISCONNECT ("page closed"), sent in the same event.
    fn depart_on_pagehide(self: &Rc<Self>) {
        use wasm_bindgen::JsCast;
        let Some(w) = web_sys::window() else {
            return;
        };
        let me = Rc::downgrade(self);
        let c = EventClosure::new(move |e: web_sys::Event| {
            let persisted = js_sys::Reflect::get(&e, &"persisted".into())
                .ok()
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            if let (false, Some(space)) = (persisted, me.upgrade()) {
                space.depart_now();
            }
        });
        let _ = w.add_event_listener_with_callback("pagehide", c.as_ref().unchecked_ref());
        *self.on_pagehide.borrow_mut() = Some(c);
    }

    /// The page is being discarded: tombstone to the bootstrap server now, then leave.
    fn depart_now(&self) {
        if !self.running.get() {
            return;
        }
        let tomb = AgentInfo::tombstone(
            self.agent.clone(),
            self.space.clone(),
            crate::browser::clock::now(),
        );
        match AgentInfoSigned::sign(&self.key, tomb) {
            Ok(info) => {
                if let Err(e) = fetch::put_keepalive(&self.bootstrap, &info) {
                    self.bootstrap_failed(format!("put of our tombstone failed: {e}"));
                }
            }
            Err(e) => self.emit(&Event::Space(SpaceEvent::Error(
                crate::core::space::SpaceError::Sign(e),
            ))),
        }
        // The op writes under way would hold the leave's write of the model back until the
        // page is gone ([`OpStore::abandon_writes`]).
        self.store.abandon_writes();
        let _ = self.command(Command::Leave);
    }

    fn remember_unannounced(&self, op_id: &OpId) {
        let mut u = self.unannounced.borrow_mut();
        if u.len() < MAX_UNANNOUNCED {
            u.insert(op_id.clone());
        }
    }

    /// A bootstrap request failed: reported unless the previous one failed too.
    fn bootstrap_failed(&self, what: String) {
        if self.bootstrap_ok.replace(false) {
            self.emit(&Event::Failure(Failure::Bootstrap(what)));
        }
    }
}

/// Carries the link's events to the app, and acts on them: a loss fails relayed
/// connections; a reconnect puts our agent info to bootstrap again and announces the local
/// ops whose announcement failed meanwhile.
async fn watch_link(space: Rc<BrowserSpace>, mut events: LinkEvents) {
    while let Some(e) = events.next().await {
        if !space.running.get() {
            return;
        }
        match e {
            LinkEvent::Status(status) => {
                match status.state {
                    LinkState::Connected => {
                        if let Some(info) = space.local_info.borrow().clone() {
                            spawn_local(put_with_retry(
                                space.clone(),
                                space.bootstrap.clone(),
                                info,
                            ));
                        }
                        spawn_local(reannounce(space.clone()));
                    }
                    _ if status.attempt == 1 => space.net.signal_interrupted(),
                    _ => {}
                }
                space.emit(&Event::Status(status));
            }
            LinkEvent::Failed(why) => space.emit(&Event::Failure(Failure::Signal(why))),
        }
    }
}

/// Tells the space the link is back ([`Command::Reconnected`]: clear unresponsive marks,
/// catch up, announce the unannounced local ops), then announces the ops still unannounced
/// again a few times while the link stays up (peers come back to the server on their own
/// back-off, maybe after us).
async fn reannounce(space: Rc<BrowserSpace>) {
    let mut pause = REANNOUNCE_FIRST_PAUSE_MS;
    for attempt in 0..REANNOUNCE_TRIES {
        if !space.running.get() || space.link.status().state != LinkState::Connected {
            return;
        }
        let mut ops: Vec<OpId> = space.unannounced.borrow().iter().cloned().collect();
        sort::sort(&mut ops); // in id order, as from the B-tree set before (size)
        // The first time even with no op: the space clears its marks and catches up.
        if ops.is_empty() && attempt > 0 {
            return;
        }
        if space.command(Command::Reconnected(ops)).is_err() {
            return;
        }
        sleep_ms(pause).await;
        pause *= 2;
    }
}

/// PUTs `info` to bootstrap ([`put_until_settled`]) and records the outcome in
/// [`BrowserSpace::last_put`], unless a later PUT started meanwhile (its outcome is the one
/// a poll must judge by).
async fn put_with_retry(
    space: Rc<BrowserSpace>,
    bootstrap: BootstrapClient,
    info: AgentInfoSigned,
) {
    let serial = space.puts_started.get() + 1;
    space.puts_started.set(serial);
    space.last_put.set(PutOutcome::Pending);
    let outcome = put_until_settled(&space, &bootstrap, &info).await;
    if space.puts_started.get() == serial {
        space.last_put.set(outcome);
    }
}

/// PUTs `info`, retrying a transient failure ([`is_transient`]: unreachable, overloaded,
/// behind a proxy while down) up to [`PUT_TRIES`] times on [`PollSchedule`]'s back-off; a
/// refusal is final. Each failure is reported ([`BrowserSpace::bootstrap_failed`]).
async fn put_until_settled(
    space: &BrowserSpace,
    bootstrap: &BootstrapClient,
    info: &AgentInfoSigned,
) -> PutOutcome {
    let mut schedule = PollSchedule::default();
    for _ in 0..PUT_TRIES {
        match fetch::put(bootstrap, info).await {
            Ok(()) => {
                space.bootstrap_ok.set(true);
                return PutOutcome::Stored(crate::browser::clock::now());
            }
            Err(e) => {
                space.bootstrap_failed(format!("put of our agent info failed: {e}"));
                if !e.is_transient() {
                    return PutOutcome::Refused;
                }
                let now = crate::browser::clock::now();
                let at = schedule.on_error(now);
                sleep_ms(at.micros_since(now) / 1000).await;
            }
        }
    }
    PutOutcome::GaveUp(crate::browser::clock::now())
}

async fn poll_bootstrap(
    space: Rc<BrowserSpace>,
    bootstrap: BootstrapClient,
    mut schedule: PollSchedule,
) {
    // The agents of the last answer and their infos' `created_at`: replaced by every answer,
    // so agents that left the bootstrap server are forgotten.
    let mut seen: HashMap<AgentId, Timestamp> = HashMap::default();
    let mut put_again = PutAgain::default();
    while space.running.get() {
        let now = crate::browser::clock::now();
        let next = match fetch::get(&bootstrap, &space.space, &Ed25519Verifier).await {
            Ok(entries) => {
                space.bootstrap_ok.set(true);
                let ours = space.local_info.borrow().clone();
                if let Some(ours) = ours
                    && put_again.after_poll(&entries, ours.info(), space.last_put.get(), now)
                {
                    spawn_local(put_with_retry(space.clone(), bootstrap.clone(), ours));
                }
                let infos: Vec<AgentInfoSigned> = entries
                    .into_iter()
                    .filter_map(Result::ok)
                    .filter(|i| i.info().agent != space.agent)
                    .collect();
                let mut found_new = false;
                let mut now_seen =
                    HashMap::with_capacity_and_hasher(infos.len(), Default::default());
                for i in &infos {
                    let (agent, at) = (i.info().agent.clone(), i.info().created_at);
                    found_new |= seen.get(&agent) != Some(&at);
                    now_seen.insert(agent, at);
                }
                seen = now_seen;
                if !infos.is_empty() && space.command(Command::AgentInfos(infos)).is_err() {
                    return;
                }
                schedule.on_success(now, found_new)
            }
            Err(e) => {
                space.bootstrap_failed(format!("poll for peers failed: {e}"));
                schedule.on_error(now)
            }
        };
        sleep_ms(next.micros_since(crate::browser::clock::now()) / 1000).await;
    }
}

/// A stored op decoded, with its id. The store verified it on the way in, so a failure
/// means the stored bytes changed: [`StoreError::Decode`] names the op.
fn decode_stored(m: MetaOp) -> Result<(OpId, Op), StoreError> {
    match Op::decode(&m.op_data) {
        Ok(op) => Ok((m.op_id, op)),
        Err(source) => Err(StoreError::Decode {
            op_id: m.op_id,
            source,
        }),
    }
}

/// Random bytes for the space's session ids and jitter. Without a random source (no
/// `crypto.getRandomValues`), the clock: the seed only varies jitter and session ids, and
/// two tabs joining in the same µs are rare.
fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    match getrandom::fill(&mut b) {
        Ok(()) => u64::from_le_bytes(b),
        Err(_) => crate::browser::clock::now().0 as u64,
    }
}

/// The kinds received bytes are split into ([`BrowserSpaceStats::rx_bytes_by_kind`]).
pub const RX_KINDS: [&str; 5] = ["publish", "fetch", "gossip", "membership", "notify"];

/// The index in [`RX_KINDS`] of a message delivered to the space (the transport delivers no
/// other kind).
fn rx_kind(msg: &WireMessage) -> usize {
    match msg {
        WireMessage::Publish { .. } => 0,
        WireMessage::Fetch { .. } => 1,
        WireMessage::Gossip { .. } => 2,
        WireMessage::Membership { .. } => 3,
        _ => 4,
    }
}

/// Counts the K2 frame bytes a transport sends and receives, and tells `news` of peers whose
/// connection closed because their page closed, and of the agents of each new connection.
pub struct CountingTransport<T> {
    inner: T,
    tx: Cell<u64>,
    rx: Cell<u64>,
    /// `rx` split by message kind, in [`RX_KINDS`] order.
    rx_by_kind: Cell<[u64; 5]>,
    news: mpsc::UnboundedSender<PeerNews>,
}

impl<T> CountingTransport<T> {
    /// Wraps `inner` with zeroed counters.
    pub fn new(inner: T, news: mpsc::UnboundedSender<PeerNews>) -> Self {
        Self {
            inner,
            tx: Cell::new(0),
            rx: Cell::new(0),
            rx_by_kind: Cell::new([0; 5]),
            news,
        }
    }
}

impl<T> CountingTransport<T> {
    /// `sent` (a send of `len` bytes), counted in `tx` once the transport took it.
    fn counted<'a>(
        &'a self,
        len: usize,
        sent: LocalBoxFuture<'a, Result<(), TransportError>>,
    ) -> LocalBoxFuture<'a, Result<(), TransportError>> {
        async move {
            sent.await?;
            self.tx.set(self.tx.get() + len as u64);
            Ok(())
        }
        .boxed_local()
    }
}

impl<T: Transport> Transport for CountingTransport<T> {
    fn send(&self, to: &Url, frame: Bytes) -> LocalBoxFuture<'_, Result<(), TransportError>> {
        self.counted(frame.len(), self.inner.send(to, frame))
    }

    fn send_datagram(
        &self,
        to: &Url,
        frame: Bytes,
    ) -> LocalBoxFuture<'_, Result<(), TransportError>> {
        self.counted(frame.len(), self.inner.send_datagram(to, frame))
    }

    fn close(&self, peer: &Url, reason: &str) {
        self.inner.close(peer, reason);
    }

    fn next_event(&self) -> LocalBoxFuture<'_, Option<TransportEvent>> {
        let next = self.inner.next_event();
        async move {
            let e = next.await;
            match &e {
                Some(TransportEvent::Message { len, msg, .. }) => {
                    self.rx.set(self.rx.get() + *len as u64);
                    let mut by = self.rx_by_kind.get();
                    by[rx_kind(msg)] += *len as u64;
                    self.rx_by_kind.set(by);
                }
                Some(TransportEvent::Disconnected { peer, reason })
                    if closed_by_departed_peer(reason) =>
                {
                    let _ = self.news.unbounded_send(PeerNews::Departed(peer.clone()));
                }
                Some(TransportEvent::Connected { peer, agents }) => {
                    let live = agents
                        .iter()
                        .filter(|a| !a.info().is_tombstone)
                        .map(|a| a.info().agent.clone())
                        .collect();
                    let _ = self
                        .news
                        .unbounded_send(PeerNews::Connected(peer.clone(), live));
                }
                _ => {}
            }
            e
        }
        .boxed_local()
    }
}
