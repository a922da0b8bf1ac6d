//! A simulated network of [`Space`]s, driven by hand on virtual time: N peers in one process,
//! deterministic (a seeded [`SimRng`], a [`VirtualClock`]), with latency, jitter, frame loss,
//! partitions, crashed peers, a simulated bootstrap server and a preflight model.
//!
//! Each node is a [`Space`] with its own [`MemOpStore`] (whose stored-at clock reads the
//! virtual time). The network carries out every [`Output`]:
//! - [`Output::Send`]: the transport takes the frame at once (the send result is `Ok`, or an
//!   error for a URL no node has); it arrives after `latency + rand(0..=jitter)`, links are
//!   FIFO like a data channel, a frame is lost with probability `loss`, and a frame on a cut
//!   link ([`SimNet::partition`], [`SimNet::cut`]) or to or from a crashed node is lost on
//!   arrival;
//! - [`Output::Store`]: performed on the node's store, at once ([`SimConfig::store_delay`]
//!   `None`: inside [`SimNet::drain`]) or after a virtual delay; waiting gossip
//!   ([`Space::gossip_ready`]) runs at once on the node's store ([`Space::run_gossip`]);
//! - [`Output::Close`]: recorded in [`SimNode::closed`] and reported back to the node as
//!   [`Space::peer_disconnected`] (frames already on the way still arrive: the simulated
//!   network has no connections); [`Output::Event`]: recorded in
//!   [`SimNode::events`] (a [`SpaceEvent::LocalAgentInfo`] is also put to the bootstrap
//!   server).
//!
//! Time moves in [`SimNet::step`]s, each to the next moment something is due (a frame, a store
//! result, a bootstrap poll, a space's [`Space::poll_timeout`]); [`SimNet::run_for`],
//! [`SimNet::run_until`] and [`SimNet::advance_to`] step for a while. Nothing depends on wall
//! time.
//!
//! The harness uses only the public [`Space`] API (`poll_output`, `poll_timeout`,
//! `handle_timeout`, `handle_frame`, `handle_store_response`, `handle_send_result`,
//! `insert_agent_infos`, `peer_disconnected`, `load_model`, `gossip_ready`, `run_gossip`);
//! frames reach a space in one place, [`SimNet::deliver_frame`].

use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use futures::executor::block_on;

use crate::api::Clock;
use crate::core::space::{Output, Space, SpaceEvent, StoreRequest, perform};
use crate::model::agent::AgentInfoSigned;
use crate::model::time::Timestamp;
use crate::model::url::Url;
use crate::store::MemOpStore;
use crate::testing::VirtualClock;
use crate::wire::{FetchMsg, GossipMsg, PublishMsg, WireMessage};

/// xorshift64*: small, seeded, good enough for a simulation.
#[derive(Debug, Clone)]
pub struct SimRng(u64);

impl SimRng {
    /// A generator from `seed` (any value but 0, which is taken as 1).
    pub fn new(seed: u64) -> Self {
        SimRng(seed.max(1))
    }

    /// The next 64 random bits.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (0 if `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// How the simulated network behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seed of the network's [`SimRng`] (made odd; loss, jitter, and whatever a test draws
    /// from [`SimNet::rng`]).
    pub seed: u64,
    /// Virtual start time.
    pub start: Timestamp,
    /// Least time a frame takes.
    pub latency: Duration,
    /// Extra time a frame takes, uniform in `0..=jitter`.
    pub jitter: Duration,
    /// Probability that a frame is lost.
    pub loss: f64,
    /// Time a store operation takes; `None`: performed at once, inside [`SimNet::drain`].
    pub store_delay: Option<Duration>,
    /// Interval of the simulated bootstrap server's polls (every node gets every agent info
    /// put so far); `None`: no bootstrap, tests call [`SimNet::introduce`].
    pub bootstrap_poll: Option<Duration>,
    /// The first frame on a link carries the sender's agent info to the receiver first (the
    /// transport's preflight).
    pub preflight: bool,
}

impl SimConfig {
    /// A network like the simulations': 20–50 ms per frame, no loss, 1 ms per store
    /// operation, bootstrap polls every 5 s, preflight.
    pub fn wan(seed: u64, start: Timestamp) -> Self {
        SimConfig {
            seed,
            start,
            latency: Duration::from_millis(20),
            jitter: Duration::from_millis(30),
            loss: 0.0,
            store_delay: Some(Duration::from_millis(1)),
            bootstrap_poll: Some(Duration::from_secs(5)),
            preflight: true,
        }
    }

    /// A network where nothing takes time: frames arrive in send order at the same virtual
    /// time, store operations complete at once, no bootstrap, no preflight. For unit tests
    /// that step a few spaces by hand.
    pub fn instant(start: Timestamp) -> Self {
        SimConfig {
            seed: 1,
            start,
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: 0.0,
            store_delay: None,
            bootstrap_poll: None,
            preflight: false,
        }
    }
}

/// Rewrites a node's outgoing frames (a misbehaving peer); see [`SimNet::set_tamper`].
pub type Tamper = Box<dyn FnMut(Bytes) -> Bytes>;

/// One peer of a [`SimNet`].
pub struct SimNode {
    /// Its space.
    pub space: Space,
    /// Its op store.
    pub store: MemOpStore,
    /// Its peer URL.
    pub url: Url,
    /// Every event it emitted, in order.
    pub events: Vec<SpaceEvent>,
    /// Peers it asked to disconnect ([`Output::Close`]), in order.
    pub closed: Vec<Url>,
    /// Bytes of the frames delivered to it.
    pub bytes_in: u64,
    /// Bytes of the frames it sent.
    pub bytes_out: u64,
    /// `bytes_in` by message kind ([`frame_kind`]).
    pub in_by_kind: BTreeMap<&'static str, u64>,
    /// Crashed ([`SimNet::crash`]): no timers, no store results, its frames are lost.
    pub crashed: bool,
    tamper: Option<Tamper>,
}

impl std::fmt::Debug for SimNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimNode")
            .field("url", &self.url)
            .field("space", &self.space)
            .field("crashed", &self.crashed)
            .finish()
    }
}

impl SimNode {
    /// Number of [`SpaceEvent::OpReceived`] events.
    pub fn received(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, SpaceEvent::OpReceived { .. }))
            .count()
    }

    /// Whether any event satisfies `pred`.
    pub fn has(&self, pred: impl Fn(&SpaceEvent) -> bool) -> bool {
        self.events.iter().any(pred)
    }

    /// Whether its store holds every op of `ids`.
    pub fn holds_all(&self, ids: &[crate::model::id::OpId]) -> bool {
        use crate::api::OpStore;
        block_on(self.store.filter_out_existing_ops(ids.to_vec()))
            .expect("MemOpStore query")
            .is_empty()
    }
}

enum Ev {
    Frame {
        from: usize,
        to: usize,
        frame: Bytes,
    },
    Store {
        node: usize,
        ticket: u64,
        request: StoreRequest,
    },
}

struct Queued {
    at: i64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        // Min-heap on (time, sequence).
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

fn us(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// A simulated network of [`Space`]s (see the [module docs](self)).
pub struct SimNet {
    cfg: SimConfig,
    rng: SimRng,
    clock: VirtualClock,
    /// The peers, by index (the order they were added).
    pub nodes: Vec<SimNode>,
    queue: BinaryHeap<Queued>,
    seq: u64,
    /// Last delivery time per directed link, to keep links FIFO.
    link_last: HashMap<(usize, usize), i64>,
    /// Directed links that carried a frame (the receiver got the preflight).
    preflighted: HashSet<(usize, usize)>,
    /// Directed links whose frames are lost.
    cut: HashSet<(usize, usize)>,
    /// Directed links whose frames of one [`frame_kind`] are lost.
    cut_kinds: HashSet<(usize, usize, &'static str)>,
    bootstrap: BTreeMap<Vec<u8>, AgentInfoSigned>,
    next_poll: i64,
    lost: u64,
}

impl std::fmt::Debug for SimNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimNet")
            .field("now", &self.now())
            .field("nodes", &self.nodes.len())
            .field("in_flight", &self.queue.len())
            .finish()
    }
}

impl SimNet {
    /// An empty network.
    pub fn new(cfg: SimConfig) -> Self {
        SimNet {
            next_poll: cfg
                .bootstrap_poll
                .map_or(i64::MAX, |p| cfg.start.0.saturating_add(us(p))),
            rng: SimRng::new(cfg.seed | 1),
            clock: VirtualClock::new(cfg.start),
            cfg,
            nodes: Vec::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            link_last: HashMap::new(),
            preflighted: HashSet::new(),
            cut: HashSet::new(),
            cut_kinds: HashSet::new(),
            bootstrap: BTreeMap::new(),
            lost: 0,
        }
    }

    /// The virtual time.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The network's clock (shared with the stores from [`SimNet::mem_store`]).
    pub fn clock(&self) -> &VirtualClock {
        &self.clock
    }

    /// The network's random numbers (draw space seeds from it to stay deterministic).
    pub fn rng(&mut self) -> &mut SimRng {
        &mut self.rng
    }

    /// The network's settings; changes apply from the next frame on.
    pub fn config_mut(&mut self) -> &mut SimConfig {
        &mut self.cfg
    }

    /// An empty op store whose stored-at clock reads the virtual time.
    pub fn mem_store(&self) -> MemOpStore {
        MemOpStore::new(self.clock.reader())
    }

    /// Frames lost so far (random loss, cut links, crashed nodes).
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Adds a peer running `space` on `store`, reachable at the URL of its agent info. With a
    /// bootstrap server, it gets every info put so far at once (its first poll). Returns its
    /// index.
    ///
    /// # Panics
    /// If the space's agent info names no URL.
    pub fn add(&mut self, space: Space, store: MemOpStore) -> usize {
        let url = space
            .local_agent_info()
            .url
            .clone()
            .expect("a simulated space needs a URL");
        let i = self.nodes.len();
        let mut space = space;
        // A store filled beforehand: the model starts from what it holds.
        block_on(space.load_model(&store, self.now())).expect("MemOpStore load");
        self.nodes.push(SimNode {
            space,
            store,
            url,
            events: Vec::new(),
            closed: Vec::new(),
            bytes_in: 0,
            bytes_out: 0,
            in_by_kind: BTreeMap::new(),
            crashed: false,
            tamper: None,
        });
        self.drain(i);
        if self.cfg.bootstrap_poll.is_some() {
            let infos: Vec<_> = self.bootstrap.values().cloned().collect();
            let now = self.now();
            self.nodes[i].space.insert_agent_infos(now, infos);
            self.drain(i);
        }
        i
    }

    /// Index of the node at `url`.
    pub fn index_of(&self, url: &Url) -> Option<usize> {
        self.nodes.iter().position(|n| &n.url == url)
    }

    /// Every node learns every node's current agent info (a bootstrap poll, at once).
    pub fn introduce(&mut self) {
        let infos: Vec<AgentInfoSigned> = self
            .nodes
            .iter()
            .map(|n| n.space.local_agent_info().clone())
            .collect();
        let now = self.now();
        for i in 0..self.nodes.len() {
            self.nodes[i].space.insert_agent_infos(now, infos.clone());
            self.drain(i);
        }
    }

    /// Node `i`'s outgoing frames pass through `tamper` from now on.
    pub fn set_tamper(&mut self, i: usize, tamper: Tamper) {
        self.nodes[i].tamper = Some(tamper);
    }

    /// Node `i` crashes: its timers stop, its store results and every frame to or from it
    /// are lost.
    pub fn crash(&mut self, i: usize) {
        self.nodes[i].crashed = true;
    }

    /// Node `i`, [`crash`](Self::crash)ed, runs again (a machine waking from sleep): its
    /// timers are due at once, late; what was sent to it meanwhile stays lost.
    pub fn wake(&mut self, i: usize) {
        self.nodes[i].crashed = false;
    }

    /// Frames from `from` to `to` are lost on arrival from now on (sends still succeed).
    pub fn cut(&mut self, from: usize, to: usize) {
        self.cut.insert((from, to));
    }

    /// Frames of [`frame_kind`] `kind` from `from` to `to` are lost from now on, the rest
    /// arrive: a congested connection that loses the unreliable channel's membership
    /// packets while its reliable channel delivers.
    pub fn cut_kind(&mut self, from: usize, to: usize, kind: &'static str) {
        self.cut_kinds.insert((from, to, kind));
    }

    /// Frames between a node of `a` and a node of `b`, either way, are lost from now on.
    pub fn partition(&mut self, a: &[usize], b: &[usize]) {
        for &x in a {
            for &y in b {
                self.cut.insert((x, y));
                self.cut.insert((y, x));
            }
        }
    }

    /// Every cut link carries frames again, of every kind.
    pub fn heal(&mut self) {
        self.cut.clear();
        self.cut_kinds.clear();
    }

    /// Frames sent and not yet arrived: `(from, to, frame)`.
    pub fn in_flight(&self) -> impl Iterator<Item = (usize, usize, &Bytes)> {
        self.queue.iter().filter_map(|q| match &q.ev {
            Ev::Frame { from, to, frame } => Some((*from, *to, frame)),
            Ev::Store { .. } => None,
        })
    }

    /// Loses every frame in flight.
    pub fn drop_in_flight(&mut self) {
        let kept: Vec<Queued> = self
            .queue
            .drain()
            .filter(|q| matches!(q.ev, Ev::Store { .. }))
            .collect();
        self.queue.extend(kept);
    }

    fn push(&mut self, at: i64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Queued {
            at,
            seq: self.seq,
            ev,
        });
    }

    /// Carries out every output node `i` has (see the [module docs](self)).
    pub fn drain(&mut self, i: usize) {
        let now = self.now();
        loop {
            self.drain_outputs(i);
            let n = &mut self.nodes[i];
            if !n.space.gossip_ready() {
                return;
            }
            block_on(n.space.run_gossip(&n.store, now));
        }
    }

    fn drain_outputs(&mut self, i: usize) {
        let now = self.now();
        let mut closed = Vec::new();
        loop {
            let Some(o) = self.nodes[i].space.poll_output() else {
                // A closed connection is reported back, as the browser transport does.
                let Some(peer) = closed.pop() else { break };
                self.nodes[i].space.peer_disconnected(now, &peer);
                continue;
            };
            match o {
                Output::Send {
                    ticket, to, frame, ..
                } => self.send(i, ticket, to, frame),
                Output::Store { ticket, request } => match self.cfg.store_delay {
                    None => {
                        let r = block_on(perform(&self.nodes[i].store, request));
                        self.nodes[i].space.handle_store_response(now, ticket, r);
                    }
                    Some(d) => self.push(
                        now.0 + us(d),
                        Ev::Store {
                            node: i,
                            ticket,
                            request,
                        },
                    ),
                },
                Output::Close { peer, .. } => {
                    self.nodes[i].closed.push(peer.clone());
                    closed.push(peer);
                }
                Output::Event(e) => {
                    if let SpaceEvent::LocalAgentInfo(info) = &e {
                        self.bootstrap
                            .insert(info.agent.as_bytes().to_vec(), info.clone());
                    }
                    self.nodes[i].events.push(e);
                }
            }
        }
    }

    fn send(&mut self, i: usize, ticket: u64, to: Url, frame: Bytes) {
        let now = self.now();
        let Some(j) = self.index_of(&to) else {
            self.nodes[i]
                .space
                .handle_send_result(now, ticket, Err("no such peer".into()));
            return;
        };
        let frame = match &mut self.nodes[i].tamper {
            Some(t) => t(frame),
            None => frame,
        };
        // The transport takes the frame (a dead peer's link swallows it).
        self.nodes[i].bytes_out += frame.len() as u64;
        self.nodes[i].space.handle_send_result(now, ticket, Ok(()));
        if self.cfg.loss > 0.0 && self.rng.chance(self.cfg.loss) {
            self.lost += 1;
            return;
        }
        let lat = us(self.cfg.latency) + self.rng.below(us(self.cfg.jitter) as u64 + 1) as i64;
        let last = self.link_last.get(&(i, j)).copied().unwrap_or(0);
        let at = (now.0 + lat).max(last);
        self.link_last.insert((i, j), at);
        self.push(
            at,
            Ev::Frame {
                from: i,
                to: j,
                frame,
            },
        );
    }

    fn deliver(&mut self, ev: Ev) {
        let now = self.now();
        match ev {
            Ev::Frame { from, to, frame } => {
                if self.nodes[to].crashed
                    || self.nodes[from].crashed
                    || self.cut.contains(&(from, to))
                    || (!self.cut_kinds.is_empty()
                        && self.cut_kinds.contains(&(from, to, frame_kind(&frame))))
                {
                    self.lost += 1;
                    return;
                }
                if self.cfg.preflight && self.preflighted.insert((from, to)) {
                    let info = self.nodes[from].space.local_agent_info().clone();
                    self.nodes[to].space.insert_agent_infos(now, vec![info]);
                }
                let n = &mut self.nodes[to];
                n.bytes_in += frame.len() as u64;
                *n.in_by_kind.entry(frame_kind(&frame)).or_default() += frame.len() as u64;
                let from = self.nodes[from].url.clone();
                self.deliver_frame(to, from, frame);
            }
            Ev::Store {
                node,
                ticket,
                request,
            } => {
                if self.nodes[node].crashed {
                    return;
                }
                let r = block_on(perform(&self.nodes[node].store, request));
                self.nodes[node].space.handle_store_response(now, ticket, r);
                self.drain(node);
            }
        }
    }

    /// Hands node `to` a frame from `from` now, as its transport would, and carries out what
    /// follows. (The one place frames enter a space.)
    pub fn deliver_frame(&mut self, to: usize, from: Url, frame: Bytes) {
        let now = self.now();
        self.nodes[to].space.handle_frame(now, from, frame);
        self.drain(to);
    }

    /// When the next thing is due (never before now); `i64::MAX` µs if nothing ever is.
    pub fn next_time(&self) -> Timestamp {
        let mut t = self.next_poll;
        if let Some(q) = self.queue.peek() {
            t = t.min(q.at);
        }
        for n in &self.nodes {
            if n.crashed {
                continue;
            }
            if let Some(w) = n.space.poll_timeout() {
                t = t.min(w.0);
            }
        }
        Timestamp(t.max(self.now().0))
    }

    /// One step: advances to the next moment something is due and does all of it: frames and
    /// store results that are due, a bootstrap poll, the timers of every space that asked.
    pub fn step(&mut self) {
        let t = self.next_time();
        self.clock.advance_to(t);
        let now = self.now();
        while self.queue.peek().is_some_and(|q| q.at <= t.0) {
            let q = self.queue.pop().expect("peeked");
            self.deliver(q.ev);
        }
        if self.next_poll <= t.0 {
            let poll = self.cfg.bootstrap_poll.map_or(i64::MAX, us);
            self.next_poll = t.0.saturating_add(poll);
            let infos: Vec<_> = self.bootstrap.values().cloned().collect();
            for i in 0..self.nodes.len() {
                if !self.nodes[i].crashed {
                    self.nodes[i].space.insert_agent_infos(now, infos.clone());
                    self.drain(i);
                }
            }
        }
        for i in 0..self.nodes.len() {
            if self.nodes[i].crashed {
                continue;
            }
            if self.nodes[i].space.poll_timeout().is_some_and(|w| w <= t) {
                self.nodes[i].space.handle_timeout(now);
                self.drain(i);
            }
        }
    }

    /// Carries out every node's outputs and everything due now (frames, store results),
    /// without moving time or running timers.
    pub fn settle(&mut self) {
        for i in 0..self.nodes.len() {
            self.drain(i);
        }
        let now = self.now().0;
        while self.queue.peek().is_some_and(|q| q.at <= now) {
            let q = self.queue.pop().expect("peeked");
            self.deliver(q.ev);
        }
    }

    /// Steps until `done` holds or `limit` of virtual time passed; returns whether done.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&SimNet) -> bool) -> bool {
        let end = self.now().0.saturating_add(us(limit));
        while self.now().0 < end {
            if done(self) {
                return true;
            }
            self.step();
        }
        done(self)
    }

    /// Steps through everything due before `d` from now, then sets the time to that moment.
    pub fn run_for(&mut self, d: Duration) {
        let end = Timestamp(self.now().0.saturating_add(us(d)));
        while self.next_time() < end {
            self.step();
        }
        self.clock.advance_to(end);
    }

    /// Steps through everything due up to and including `t`, then sets the time to `t`.
    pub fn advance_to(&mut self, t: Timestamp) {
        self.settle();
        while self.next_time() <= t && self.next_time().0 < i64::MAX {
            self.step();
        }
        self.clock.advance_to(t);
    }
}

/// A short name of a frame's message kind, for byte accounting ("fetch-request",
/// "publish-ops", "gossip-initiate", ..., "other").
pub fn frame_kind(frame: &Bytes) -> &'static str {
    match WireMessage::decode(frame.clone()) {
        Ok(WireMessage::Fetch {
            msg: FetchMsg::Request(_),
            ..
        }) => "fetch-request",
        Ok(WireMessage::Fetch {
            msg: FetchMsg::Response(_),
            ..
        }) => "fetch-response",
        Ok(WireMessage::Publish {
            msg: PublishMsg::Ops(_),
            ..
        }) => "publish-ops",
        Ok(WireMessage::Publish {
            msg: PublishMsg::Introduction(_),
            ..
        }) => "introduction",
        Ok(WireMessage::Publish {
            msg: PublishMsg::Agent(_),
            ..
        }) => "publish-agent",
        Ok(WireMessage::Gossip {
            msg: GossipMsg::Initiate(_),
            ..
        }) => "gossip-initiate",
        Ok(WireMessage::Gossip {
            msg: GossipMsg::Accept(_),
            ..
        }) => "gossip-accept",
        Ok(WireMessage::Gossip {
            msg: GossipMsg::NoDiff(_),
            ..
        }) => "gossip-nodiff",
        Ok(WireMessage::Gossip { .. }) => "gossip-other",
        Ok(WireMessage::Membership { .. }) => "membership",
        _ => "other",
    }
}
