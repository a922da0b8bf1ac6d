//! Pair (and trio) simulations: real `Dht`s and `MemOpStore`s, every message encoded and
//! decoded, virtual time, seeded data. Ops a round says to fetch are copied from the peer's
//! store (the fetch module's job in a space).

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use futures::executor::block_on;

use super::*;
use crate::api::MetaOp;
use crate::core::dht::time::TIME_FACTOR;
use crate::model::id::Locator;
use crate::model::op::Op;
use crate::store::MemOpStore;
use crate::wire::GossipMessageType;

pub(super) const HOUR: i64 = 3_600_000_000;
/// 2026-01-01T00:00:00Z.
pub(super) const T0: i64 = 1_767_225_600_000_000;
/// Simulated one-way latency per message, µs.
pub(super) const LATENCY: i64 = 20_000;

pub(super) struct Agents(pub(super) HashMap<Bytes, Bytes>);

impl AgentInfos for Agents {
    fn has(&self, agent: &[u8]) -> bool {
        self.0.contains_key(agent)
    }
    fn info(&self, agent: &[u8]) -> Option<Bytes> {
        self.0.get(agent).cloned()
    }
}

pub(super) struct Node {
    pub(super) url: Url,
    pub(super) store: MemOpStore,
    pub(super) dht: Dht,
    pub(super) gossip: Gossip,
    pub(super) agents: Agents,
}

/// In flight: (to index, from url, encoded message).
type Flight = (usize, Url, Bytes);

pub(super) struct Sim {
    pub(super) clock: Rc<Cell<Timestamp>>,
    pub(super) nodes: Vec<Node>,
    pub(super) flights: VecDeque<Flight>,
    /// Index (0-based, over all messages sent) of messages to lose.
    pub(super) lose: Vec<u64>,
    pub(super) sent: u64,
    pub(super) bytes: u64,
    pub(super) events: Vec<(usize, GossipEvent)>,
    pub(super) errors: Vec<(usize, GossipError)>,
    /// Agent infos handed out to check: (node, info).
    pub(super) checked: Vec<(usize, Bytes)>,
    /// Every message sent: (type, encoded bytes).
    pub(super) log: Vec<(GossipMessageType, usize)>,
    /// Partitioned nodes: messages to or from them are lost.
    pub(super) cut: Vec<usize>,
    /// One-way latency per message, µs.
    pub(super) latency: i64,
}

pub(super) fn url(i: usize) -> Url {
    Url::parse(&format!("ws://peer.test:80/p{i}")).unwrap()
}

pub(super) struct Rng(pub(super) u64);
impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// An op created at `t` with 500–1500 bytes of payload.
    pub(super) fn op(&mut self, t: i64) -> MetaOp {
        let len = 500 + (self.next() % 1001) as usize;
        let payload: Vec<u8> = (0..len).map(|_| self.next() as u8).collect();
        let op = Op::new(Timestamp::from_micros(t), payload).unwrap();
        MetaOp {
            op_id: op.id(),
            op_data: op.encode(),
        }
    }
}

impl Sim {
    pub(super) fn new(n: usize, cfg: GossipConfig) -> Sim {
        let clock = Rc::new(Cell::new(Timestamp::from_micros(T0)));
        let nodes = (0..n)
            .map(|i| {
                let c = clock.clone();
                let agent = Bytes::from(vec![i as u8; 32]);
                Node {
                    url: url(i),
                    store: MemOpStore::new(move || c.get()),
                    dht: Dht::new(TIME_FACTOR, Locator::default(), clock.get()).unwrap(),
                    gossip: Gossip::new(
                        cfg.clone(),
                        vec![agent.clone()],
                        SectorSet::FULL,
                        i as u64,
                    ),
                    agents: Agents(HashMap::from([(
                        agent,
                        Bytes::from(format!("{{\"agent\":{i}}}")),
                    )])),
                }
            })
            .collect();
        Sim {
            clock,
            nodes,
            flights: VecDeque::new(),
            lose: Vec::new(),
            sent: 0,
            bytes: 0,
            events: Vec::new(),
            errors: Vec::new(),
            checked: Vec::new(),
            log: Vec::new(),
            cut: Vec::new(),
            latency: LATENCY,
        }
    }

    pub(super) fn now(&self) -> Timestamp {
        self.clock.get()
    }

    pub(super) fn advance(&mut self, us: i64) {
        self.clock.set(self.now().add_micros(us));
        let now = self.now();
        for n in &mut self.nodes {
            n.dht.update(now);
        }
    }

    pub(super) fn store(&mut self, i: usize, ops: Vec<MetaOp>) {
        let n = &mut self.nodes[i];
        let stored = block_on(n.store.process_incoming_ops(ops)).unwrap();
        n.dht.inform_ops_stored(&stored);
    }

    pub(super) fn op_count(&self, i: usize) -> u64 {
        block_on(self.nodes[i].store.query_totals())
            .unwrap()
            .op_count
    }

    pub(super) fn index_of(&self, u: &Url) -> usize {
        self.nodes.iter().position(|n| n.url == *u).unwrap()
    }

    /// Moves outputs of every node into flight / stores / events.
    pub(super) fn collect(&mut self) {
        for i in 0..self.nodes.len() {
            while let Some(o) = self.nodes[i].gossip.poll_output() {
                match o {
                    GossipOutput::Send { to, msg } => {
                        let data = msg.encode();
                        self.bytes += data.len() as u64;
                        self.log.push((msg.msg_type(), data.len()));
                        let k = self.sent;
                        self.sent += 1;
                        let to_cut = self.cut.contains(&self.index_of(&to));
                        if !self.lose.contains(&k) && !to_cut && !self.cut.contains(&i) {
                            let from = self.nodes[i].url.clone();
                            self.flights.push_back((self.index_of(&to), from, data));
                        }
                    }
                    GossipOutput::Fetch { from, ids } => {
                        let j = self.index_of(&from);
                        let ops = block_on(self.nodes[j].store.retrieve_ops(ids)).unwrap();
                        self.store(i, ops);
                    }
                    GossipOutput::CheckAgents { infos, .. } => {
                        // "Verified and stored": agent j's info is `{"agent":j}`.
                        for info in infos {
                            let j: usize = std::str::from_utf8(&info[9..info.len() - 1])
                                .unwrap()
                                .parse()
                                .unwrap();
                            let id = Bytes::from(vec![j as u8; 32]);
                            self.nodes[i].agents.0.insert(id, info.clone());
                            self.checked.push((i, info));
                        }
                    }
                    GossipOutput::Event(e) => self.events.push((i, e)),
                }
            }
        }
    }

    /// Delivers messages until none is in flight.
    pub(super) fn pump(&mut self) {
        self.collect();
        while let Some((to, from, data)) = self.flights.pop_front() {
            self.advance(self.latency);
            self.deliver(to, &from, data);
            self.collect();
        }
    }

    pub(super) fn deliver(&mut self, to: usize, from: &Url, data: Bytes) {
        let msg = GossipMsg::decode(data).unwrap();
        let now = self.now();
        let n = &mut self.nodes[to];
        let ctx = Ctx {
            dht: &n.dht,
            store: &n.store,
            agents: &n.agents,
        };
        if let Err(e) = block_on(n.gossip.handle(ctx, now, from, msg)) {
            self.errors.push((to, e));
        }
    }

    /// `i` initiates with `j`; runs the round out.
    pub(super) fn round(&mut self, i: usize, j: usize) {
        let now = self.now();
        let count = self.nodes[i].dht.op_count();
        let to = self.nodes[j].url.clone();
        self.nodes[i].gossip.initiate(now, to, count).unwrap();
        self.pump();
    }

    pub(super) fn completed(&self, node: usize) -> Vec<RoundSummary> {
        self.events
            .iter()
            .filter(|(i, _)| *i == node)
            .filter_map(|(_, e)| match e {
                GossipEvent::RoundCompleted { summary, .. } => Some(*summary),
                _ => None,
            })
            .collect()
    }

    /// Rounds `b` initiates with `a` (1 s apart) until both hold the same op count; the count.
    pub(super) fn rounds_to_converge(&mut self, a: usize, b: usize, max: usize) -> usize {
        for r in 1..=max {
            self.advance(1_000_000);
            self.round(b, a);
            if self.op_count(a) == self.op_count(b) && self.same_top(a, b) {
                return r;
            }
        }
        panic!("no convergence in {max} rounds");
    }

    pub(super) fn same_top(&self, a: usize, b: usize) -> bool {
        let x = self.nodes[a]
            .dht
            .snapshot_minimal(&SectorSet::FULL)
            .unwrap();
        let y = self.nodes[b]
            .dht
            .snapshot_minimal(&SectorSet::FULL)
            .unwrap();
        x == y
    }
}

/// Plain-Kitsune2 mode: the scenarios below check Kitsune2's own diff (fennec mode:
/// `sim_tests.rs`).
pub(super) fn plain() -> GossipConfig {
    GossipConfig {
        reconcile: false,
        ..GossipConfig::default()
    }
}

/// Initial sync: 20 ops of 500–1500 B on one fresh peer, none on the other.
fn initial_sync() -> (Sim, usize) {
    let mut sim = Sim::new(2, plain());
    let mut rng = Rng(1);
    let ops = (0..20).map(|k| rng.op(T0 - k * 60_000_000)).collect();
    sim.store(0, ops);
    let rounds = sim.rounds_to_converge(0, 1, 5);
    (sim, rounds)
}

/// Historical load: 730 ops, one every 12 h over the past year, stored a day ago.
fn historical() -> (Sim, usize) {
    let mut sim = Sim::new(2, plain());
    let mut rng = Rng(2);
    let ops = (0..730).map(|k| rng.op(T0 - k * 12 * HOUR)).collect();
    sim.store(0, ops);
    sim.advance(24 * HOUR);
    let rounds = sim.rounds_to_converge(0, 1, 30);
    (sim, rounds)
}

/// 300 shared ops over a month, then a few differences each way, all stored a day ago.
fn random_differences() -> (Sim, usize) {
    let mut sim = Sim::new(2, plain());
    let mut rng = Rng(3);
    let month = |rng: &mut Rng| {
        let t = T0 - (rng.next() % (720 * HOUR as u64)) as i64;
        rng.op(t)
    };
    let shared: Vec<MetaOp> = (0..300).map(|_| month(&mut rng)).collect();
    sim.store(0, shared.clone());
    sim.store(1, shared);
    for (node, n) in [(0, 5), (1, 3)] {
        let ops = (0..n).map(|_| month(&mut rng)).collect();
        sim.store(node, ops);
    }
    sim.advance(24 * HOUR);
    let rounds = sim.rounds_to_converge(0, 1, 10);
    (sim, rounds)
}

#[test]
fn initial_sync_converges_in_one_round() {
    let (sim, rounds) = initial_sync();
    assert_eq!(sim.op_count(1), 20);
    assert_eq!(rounds, 1, "new ops since carries all 20 ids in the Accept");
    assert!(sim.errors.is_empty(), "{:?}", sim.errors);
    // The bookmark from the first Accept: the next round offers none of the 20 again (the
    // 30-minute default window would). Node 1 does offer them back (it stored them after
    // node 0's bookmark was set, as in Kitsune2); node 0 fetches none.
    let mut sim = sim;
    sim.advance(1_000_000);
    sim.round(1, 0);
    let again = *sim.completed(1).last().unwrap();
    assert_eq!(again.ids_received, 0);
    let back = *sim.completed(0).last().unwrap();
    assert_eq!((back.ids_received, back.ids_to_fetch), (20, 0));
}

#[test]
fn historical_load_reaches_a_newcomer_through_the_diff() {
    let (sim, rounds) = historical();
    assert_eq!(sim.op_count(1), 730);
    assert!(rounds <= 3, "{rounds} rounds");
    // Stored a day ago: "new ops since" (30 min) offers nothing, the disc diff does.
    let first = sim.completed(1)[0];
    assert_eq!(first.diff, DiffKind::Disc);
    assert!(first.rings_pending, "the recent ops are in the rings");
    if rounds > 1 {
        assert_eq!(sim.completed(1)[1].diff, DiffKind::Ring);
    }
    assert!(sim.errors.is_empty(), "{:?}", sim.errors);
}

#[test]
fn random_differences_repair_both_ways() {
    let (sim, rounds) = random_differences();
    assert_eq!(sim.op_count(0), 308);
    assert_eq!(sim.op_count(1), 308);
    assert!(rounds <= 3, "{rounds} rounds");
    // Converged: the next round finds nothing.
    let mut sim = sim;
    sim.advance(1_000_000);
    sim.round(1, 0);
    let last = *sim.completed(1).last().unwrap();
    assert_eq!(last.diff, DiffKind::None);
    assert_eq!(last.ids_to_fetch, 0);
}

#[test]
fn scheduler_backs_off_when_rounds_find_nothing() {
    let (mut sim, _) = initial_sync();
    let fast = GossipConfig::default().fast_interval;
    assert_eq!(sim.nodes[1].gossip.scheduler().interval(), fast);
    for _ in 0..8 {
        sim.advance(1_000_000);
        sim.round(1, 0);
    }
    let steady = GossipConfig::default().steady_interval;
    assert_eq!(sim.nodes[1].gossip.scheduler().interval(), steady);
    let mut s = Scheduler::new(fast, steady);
    s.on_round(false);
    assert_eq!(s.interval(), fast * 2);
    s.on_round(true);
    assert_eq!(s.interval(), fast);
}

#[test]
fn out_of_stage_and_wrong_session_messages_are_refused() {
    let mut sim = Sim::new(2, GossipConfig::default());
    let mut rng = Rng(4);
    sim.store(0, (0..5).map(|k| rng.op(T0 - k * 1000)).collect());
    let now = sim.now();
    sim.nodes[1].gossip.initiate(now, url(0), 0).unwrap();
    sim.collect();
    let (_, _, initiate) = sim.flights.front().cloned().unwrap();
    let sid = GossipMsg::decode(initiate).unwrap().session_id().clone();
    let hashes = |sid: &Bytes| {
        GossipMsg::Hashes(K2GossipHashesMessage {
            session_id: sid.clone(),
            missing_ids: vec![],
        })
    };
    // Node 0 has no round with node 1 yet.
    sim.deliver(0, &url(1), hashes(&sid).encode());
    // Node 1 waits for Accept, not Hashes.
    sim.deliver(1, &url(0), hashes(&sid).encode());
    // Another session id.
    sim.deliver(1, &url(0), hashes(&Bytes::from_static(b"other")).encode());
    // A peer with no round at all.
    sim.deliver(1, &url(7), hashes(&sid).encode());
    let errors: Vec<GossipError> = sim.errors.drain(..).map(|(_, e)| e).collect();
    assert_eq!(
        errors,
        vec![
            GossipError::NoSession("Hashes"),
            GossipError::Stage {
                got: "Hashes",
                stage: "initiated"
            },
            GossipError::WrongSession("Hashes"),
            GossipError::NoSession("Hashes"),
        ]
    );
    // Refusals left the round intact: it completes.
    sim.pump();
    assert_eq!(sim.completed(1).len(), 1);
    assert_eq!(sim.op_count(1), 5);
    let misbehaved = sim
        .events
        .iter()
        .filter(|(_, e)| matches!(e, GossipEvent::Misbehaved { .. }))
        .count();
    assert_eq!(misbehaved, 4);
}

#[test]
fn malformed_snapshot_ends_the_round_with_terminate() {
    let mut sim = Sim::new(2, GossipConfig::default());
    let now = sim.now();
    sim.nodes[1].gossip.initiate(now, url(0), 0).unwrap();
    sim.collect();
    let (to, from, data) = sim.flights.pop_front().unwrap();
    sim.deliver(to, &from, data);
    sim.collect();
    let (_, _, accept) = sim.flights.pop_front().unwrap();
    let GossipMsg::Accept(accept) = GossipMsg::decode(accept).unwrap() else {
        panic!("expected Accept");
    };
    let bad = GossipMsg::DiscSectorsDiff(K2GossipDiscSectorsDiffMessage {
        session_id: accept.session_id.clone(),
        accept_response: Some(AcceptResponseMessage::default()),
        snapshot: Some(crate::wire::SnapshotDiscSectorsMessage {
            disc_boundary: 0,
            disc_sectors: vec![600],
            disc_sector_hashes: vec![Bytes::from_static(&[1; 32])],
        }),
        fennec_reconcile: None,
    });
    sim.deliver(0, &url(1), bad.encode());
    assert_eq!(
        sim.errors[0].1,
        GossipError::Malformed("sector index out of range")
    );
    sim.collect();
    let (_, _, reply) = sim.flights.pop_front().unwrap();
    assert!(matches!(
        GossipMsg::decode(reply).unwrap(),
        GossipMsg::Terminate(_)
    ));
    assert!(!sim.nodes[0].gossip.in_round_with(&url(1)));
}

#[test]
fn busy_over_the_accept_limit() {
    let cfg = GossipConfig {
        max_concurrent_accepted: 1,
        ..GossipConfig::default()
    };
    let mut sim = Sim::new(3, cfg);
    let now = sim.now();
    sim.nodes[1].gossip.initiate(now, url(0), 0).unwrap();
    sim.nodes[2].gossip.initiate(now, url(0), 0).unwrap();
    sim.pump();
    let busy: Vec<usize> = sim
        .events
        .iter()
        .filter(|(_, e)| matches!(e, GossipEvent::Busy { .. }))
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(busy, vec![2]);
    assert_eq!(sim.nodes[0].gossip.stats().busy_sent, 1);
    assert_eq!(sim.completed(1).len(), 1);
    assert!(!sim.nodes[2].gossip.in_round_with(&url(0)));
}

#[test]
fn burst_limit_answers_busy() {
    let cfg = GossipConfig {
        burst_count: 2,
        ..GossipConfig::default()
    };
    let mut sim = Sim::new(2, cfg);
    for _ in 0..3 {
        sim.advance(1_000_000);
        sim.round(1, 0);
    }
    assert_eq!(sim.completed(1).len(), 2);
    assert_eq!(sim.nodes[1].gossip.stats().busy_received, 1);
}

#[test]
fn silent_peer_times_out_at_the_initiate_timeout() {
    let mut sim = Sim::new(2, GossipConfig::default());
    let now = sim.now();
    sim.nodes[1].gossip.initiate(now, url(0), 0).unwrap();
    sim.collect();
    sim.flights.clear(); // the peer never answers
    let deadline = sim.nodes[1].gossip.poll_timeout().unwrap();
    assert_eq!(deadline, now.plus(GossipConfig::default().initiate_timeout));
    sim.nodes[1].gossip.handle_timeout(deadline.add_micros(-1));
    sim.collect();
    assert!(sim.events.is_empty());
    sim.nodes[1].gossip.handle_timeout(deadline);
    sim.collect();
    assert_eq!(
        sim.events,
        vec![(
            1,
            GossipEvent::TimedOut {
                peer: url(0),
                role: Role::Initiator
            }
        )]
    );
    assert_eq!(sim.nodes[1].gossip.poll_timeout(), None);
}

#[test]
fn simultaneous_initiates_run_one_round() {
    for seed in 0..8 {
        let mut sim = Sim::new(2, GossipConfig::default());
        sim.nodes[0].gossip =
            Gossip::new(GossipConfig::default(), vec![], SectorSet::FULL, seed + 100);
        let mut rng = Rng(seed);
        sim.store(0, (0..3).map(|k| rng.op(T0 - k)).collect());
        sim.store(1, (0..2).map(|k| rng.op(T0 - k)).collect());
        let now = sim.now();
        sim.nodes[0].gossip.initiate(now, url(1), 0).unwrap();
        sim.nodes[1].gossip.initiate(now, url(0), 0).unwrap();
        sim.pump();
        assert!(sim.errors.is_empty(), "seed {seed}: {:?}", sim.errors);
        let (a, b) = (sim.completed(0), sim.completed(1));
        assert_eq!((a.len(), b.len()), (1, 1), "seed {seed}");
        assert_ne!(a[0].role, b[0].role, "seed {seed}");
        assert_eq!((sim.op_count(0), sim.op_count(1)), (5, 5), "seed {seed}");
        assert_eq!(sim.nodes[0].gossip.stats().tie_breaks, 1);
    }
}

#[test]
fn a_lost_message_times_out_and_the_next_round_repairs() {
    let (mut sim, _) = {
        let mut sim = Sim::new(2, GossipConfig::default());
        let mut rng = Rng(5);
        sim.store(0, (0..40).map(|k| rng.op(T0 - k * 24 * HOUR)).collect());
        sim.advance(24 * HOUR);
        (sim, ())
    };
    // Lose the third message: DiscSectorsDiff (Initiate, Accept, DiscSectorsDiff).
    sim.lose = vec![2];
    sim.round(1, 0);
    assert!(sim.completed(1).is_empty());
    sim.advance(16_000_000);
    let now = sim.now();
    sim.nodes[0].gossip.handle_timeout(now);
    sim.nodes[1].gossip.handle_timeout(now);
    sim.collect();
    let timed_out = sim
        .events
        .iter()
        .filter(|(_, e)| matches!(e, GossipEvent::TimedOut { .. }))
        .count();
    assert_eq!(timed_out, 2);
    assert_eq!(sim.op_count(1), 0);
    let rounds = sim.rounds_to_converge(0, 1, 3);
    assert_eq!(sim.op_count(1), 40);
    assert!(rounds <= 2);
}

/// A peer initiates only when it holds no round with us, so its `Initiate` while our round
/// with it is open means it dropped that round (it declared us down, or its timers ran while
/// ours stood still: a tab waking from sleep). Seen in a browser: the woken tab answered the
/// others' `Initiate`s `Busy` until its stale round timed out, 15 s, and got what was
/// published while it slept only then.
#[test]
fn an_initiate_from_a_peer_that_dropped_our_round_replaces_it() {
    let mut sim = Sim::new(2, GossipConfig::default());
    let mut rng = Rng(9);
    sim.store(1, (0..20).map(|k| rng.op(T0 - k * 24 * HOUR)).collect());
    sim.advance(24 * HOUR);
    // Node 0's DiscSectorsDiff is lost: node 1 (acceptor) waits for it, up to the round timeout.
    sim.lose = vec![2];
    sim.round(0, 1);
    assert!(sim.completed(1).is_empty());
    // Node 0 drops its round (as on a down) and initiates again 1 s later.
    sim.advance(1_000_000);
    assert!(sim.nodes[0].gossip.end_round_with(&url(1)));
    sim.round(0, 1);
    assert!(sim.errors.is_empty(), "{:?}", sim.errors);
    let stats = sim.nodes[1].gossip.stats();
    assert_eq!((stats.busy_sent, stats.superseded), (0, 1));
    assert_eq!(sim.completed(0).len(), 1);
    assert_eq!(sim.op_count(0), 20);
}

#[test]
fn agent_infos_are_exchanged_on_the_ring_and_disc_paths() {
    let info = |i: usize| Bytes::from(format!("{{\"agent\":{i}}}"));
    for (sim, _) in [initial_sync(), historical()] {
        let mut checked = sim.checked.clone();
        checked.sort();
        assert_eq!(checked, vec![(0, info(1)), (1, info(0))]);
        assert!(sim.errors.is_empty(), "{:?}", sim.errors);
    }
}

#[test]
fn initiated_rounds_are_limited_and_one_per_peer() {
    let mut sim = Sim::new(5, GossipConfig::default());
    let now = sim.now();
    let g = &mut sim.nodes[0].gossip;
    for i in 1..=3 {
        g.initiate(now, url(i), 0).unwrap();
    }
    assert_eq!(g.initiated_open(), 3);
    assert_eq!(g.initiate(now, url(1), 0), Err(GossipError::SessionOpen));
    assert_eq!(
        g.initiate(now, url(4), 0),
        Err(GossipError::TooManyRounds(3))
    );
    sim.pump();
    assert_eq!(sim.completed(0).len(), 3);
}

#[test]
fn pick_peers_prefers_longest_since_gossip_and_skips_unresponsive() {
    use schedule::{Candidate, pick_peers};
    let t = |s| Some(Timestamp::from_micros(s));
    let c = |i, responsive, last, sectors| Candidate {
        url: url(i),
        sectors,
        responsive,
        last_gossip: last,
    };
    let none = SectorSet::default();
    let cands = [
        c(1, true, t(50), SectorSet::FULL),
        c(2, true, None, SectorSet::FULL),
        c(3, false, None, SectorSet::FULL),
        c(4, true, None, none),
        c(5, true, t(10), SectorSet::FULL),
        c(6, true, None, SectorSet::FULL),
    ];
    let busy = |u: &Url| *u == url(6);
    assert_eq!(
        pick_peers(&cands, &SectorSet::FULL, busy, 3),
        vec![url(2), url(5), url(1)]
    );
}

#[test]
fn config_defaults_validate_and_zero_is_refused() {
    GossipConfig::default().validate().unwrap();
    let bad = GossipConfig {
        max_concurrent_initiated: 0,
        ..GossipConfig::default()
    };
    assert!(bad.validate().is_err());
}

/// Rounds and encoded bytes of the scenarios, one JSON line.
#[test]
#[ignore]
fn gossip_rounds_report() {
    let (a, ra) = initial_sync();
    let (b, rb) = historical();
    let (c, rc) = random_differences();
    println!(
        "{{\"initial_sync\":{{\"rounds\":{ra},\"bytes\":{},\"messages\":{}}},\
         \"historical_730\":{{\"rounds\":{rb},\"bytes\":{},\"messages\":{}}},\
         \"random_8_of_308\":{{\"rounds\":{rc},\"bytes\":{},\"messages\":{}}}}}",
        a.bytes, a.sent, b.bytes, b.sent, c.bytes, c.sent
    );
}
