//! Simulations of fennec mode (set reconciliation) against plain-Kitsune2 mode on the same
//! data: Kitsune2's initial-sync and historical-load scenarios, stores with random
//! differences, loss, partition and heal, and hostile sketches. Deterministic: seeded data,
//! virtual time, the pair simulator of `tests.rs`.

use futures::executor::block_on;

use super::tests::{HOUR, Rng, Sim, T0, plain, url};
use super::*;
use crate::api::MetaOp;
use crate::model::op::Op;
use crate::wire::{FennecReconcileMessage, GossipMessageType as T};

const YEAR: i64 = 365 * 24 * HOUR;

/// An op at `t` with an 8-byte payload (gossip moves ids; payload size does not matter here).
fn small_op(rng: &mut Rng, t: i64) -> MetaOp {
    let op = Op::new(Timestamp::from_micros(t), rng.next().to_le_bytes().to_vec()).unwrap();
    MetaOp {
        op_id: op.id(),
        op_data: op.encode(),
    }
}

/// What a run to convergence cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Figures {
    rounds: usize,
    bytes: u64,
    /// Bytes of the messages after Initiate and Accept (the diff or reconciliation).
    bytes_after_detection: u64,
    /// Round trips after Initiate/Accept, summed over rounds (diff messages alternate).
    round_trips_after_detection: usize,
}

#[cfg(not(target_arch = "wasm32"))]
impl Figures {
    fn json(&self) -> String {
        format!(
            "{{\"rounds\":{},\"bytes\":{},\"bytes_after_detection\":{},\
             \"round_trips_after_detection\":{}}}",
            self.rounds, self.bytes, self.bytes_after_detection, self.round_trips_after_detection
        )
    }
}

/// Node 1 initiates with node 0 (1 s apart) until both hold the same ops; panics after `max`.
fn converge(sim: &mut Sim, max: usize) -> Figures {
    let mut f = Figures::default();
    let start_bytes = sim.bytes;
    for r in 1..=max {
        sim.advance(1_000_000);
        let from = sim.log.len();
        sim.round(1, 0);
        let diff: Vec<usize> = sim.log[from..]
            .iter()
            .filter(|(t, _)| !matches!(t, T::Initiate | T::Accept | T::Agents))
            .map(|(_, b)| *b)
            .collect();
        f.bytes_after_detection += diff.iter().sum::<usize>() as u64;
        f.round_trips_after_detection += diff.len().div_ceil(2);
        if sim.op_count(0) == sim.op_count(1) && sim.same_top(0, 1) {
            f.rounds = r;
            f.bytes = sim.bytes - start_bytes;
            return f;
        }
    }
    panic!("no convergence in {max} rounds");
}

/// `n` shared ops over the past year, `d` more split between the two nodes, all stored a
/// day ago.
fn differences(cfg: &GossipConfig, n: usize, d: usize, seed: u64) -> Sim {
    let mut sim = Sim::new(2, cfg.clone());
    let mut rng = Rng(seed);
    let any = |rng: &mut Rng| {
        let t = T0 - (rng.next() % YEAR as u64) as i64;
        small_op(rng, t)
    };
    let shared: Vec<MetaOp> = (0..n).map(|_| any(&mut rng)).collect();
    sim.store(0, shared.clone());
    sim.store(1, shared);
    for k in 0..d {
        let op = any(&mut rng);
        sim.store(k % 2, vec![op]);
    }
    sim.advance(24 * HOUR);
    sim
}

fn fennec() -> GossipConfig {
    GossipConfig::default()
}

/// How the reconciling rounds of both nodes ended, summed: (settled from sketch symbols,
/// settled from a whole id list, given up on too many differences).
fn recon_counts(sim: &Sim) -> (u64, u64, u64) {
    sim.nodes.iter().fold((0, 0, 0), |(k, l, g), n| {
        let st = n.gossip.stats();
        (
            k + st.reconciled_by_sketch,
            l + st.reconciled_by_list,
            g + st.reconcile_gave_up,
        )
    })
}

#[test]
fn initial_sync_in_one_round() {
    let mut sim = Sim::new(2, fennec());
    let mut rng = Rng(1);
    sim.store(0, (0..20).map(|k| rng.op(T0 - k * 60_000_000)).collect());
    let f = converge(&mut sim, 3);
    assert_eq!((f.rounds, sim.op_count(1)), (1, 20));
    assert!(sim.errors.is_empty(), "{:?}", sim.errors);
}

/// Kitsune2's historical load: 730 ops, one every 12 h over a year, stored a day ago (out of
/// "new ops since"), to a newcomer. Plain Kitsune2 needs a disc round and a ring round.
#[test]
fn historical_load_reaches_a_newcomer_in_one_round() {
    let mut sim = Sim::new(2, fennec());
    let mut rng = Rng(2);
    sim.store(0, (0..730).map(|k| rng.op(T0 - k * 12 * HOUR)).collect());
    sim.advance(24 * HOUR);
    let f = converge(&mut sim, 2);
    assert_eq!(sim.op_count(1), 730);
    assert_eq!(f.rounds, 1, "disc and rings in one round");
    assert_eq!(sim.completed(1)[0].diff, DiffKind::Reconciled);
    assert!(f.round_trips_after_detection <= 2, "{f:?}");
    assert!(sim.errors.is_empty(), "{:?}", sim.errors);
}

/// One difference among 10 000: fennec within 2 KB and 2 round trips after detection, plain
/// Kitsune2 well over; both converge. (100 000: the ignored report.)
#[test]
fn one_difference_costs_a_sketch_not_a_sector_walk() {
    let mut sim = differences(&fennec(), 10_000, 1, 7);
    let f = converge(&mut sim, 3);
    assert_eq!(f.rounds, 1);
    assert!(f.bytes_after_detection <= 2_048, "{f:?}");
    assert!(f.round_trips_after_detection <= 2, "{f:?}");
    let mut sim = differences(&plain(), 10_000, 1, 7);
    let p = converge(&mut sim, 3);
    assert!(
        p.bytes_after_detection > 4 * f.bytes_after_detection,
        "{p:?} vs {f:?}"
    );
}

/// The goal as an assertion: one difference among 100 000 ops reconciled with at most
/// 2 KB and 2 round trips after detection (plain Kitsune2: ~23 KB, see the report). ~15 s in
/// debug, mostly building the two stores.
#[test]
fn one_difference_among_100_000_within_2_kb_and_2_round_trips() {
    let mut sim = differences(&fennec(), 100_000, 1, 101);
    let f = converge(&mut sim, 2);
    assert_eq!(
        (f.rounds, sim.op_count(0), sim.op_count(1)),
        (1, 100_001, 100_001)
    );
    assert!(f.bytes_after_detection <= 2_048, "{f:?}");
    assert!(f.round_trips_after_detection <= 2, "{f:?}");
}

/// Differences both ways converge; the sketch grows (asks for more) when the op counts hide
/// the difference (equal counts, 50 each way).
#[test]
fn symmetric_differences_converge_by_asking_for_more() {
    let mut sim = differences(&fennec(), 2_000, 100, 9);
    assert_eq!(sim.op_count(0), sim.op_count(1));
    let f = converge(&mut sim, 2);
    assert_eq!((f.rounds, sim.op_count(0)), (1, 2_100));
    assert!(
        f.round_trips_after_detection >= 2,
        "needed more symbols: {f:?}"
    );
    let asked = sim
        .log
        .iter()
        .filter(|(t, _)| *t == T::DiscSectorDetailsDiff)
        .count();
    assert!(asked >= 1);
    assert!(sim.errors.is_empty(), "{:?}", sim.errors);
    assert_eq!(recon_counts(&sim), (1, 0, 0), "decoded from symbols");
}

/// More differences than `max_reconcile_symbols` can decode, and neither whole id list fits
/// `max_ids`: the acceptor ends the round and the next round with that peer is plain
/// Kitsune2, which converges.
#[test]
fn too_many_differences_fall_back_to_plain() {
    let cfg = GossipConfig {
        max_reconcile_symbols: 16,
        max_ids: 100,
        ..fennec()
    };
    let mut sim = differences(&cfg, 500, 200, 11);
    let f = converge(&mut sim, 8);
    assert_eq!(sim.op_count(0), 700);
    assert!(f.rounds >= 2, "{f:?}");
    let ended = sim.events.iter().any(
        |(_, e)| matches!(e, GossipEvent::Terminated { reason, .. } if reason.contains("too many")),
    );
    assert!(ended);
    let (_, by_list, gave_up) = recon_counts(&sim);
    assert_eq!(by_list, 0);
    assert!(gave_up >= 1, "{:?}", recon_counts(&sim));
    let kinds: Vec<DiffKind> = sim.completed(1).iter().map(|s| s.diff).collect();
    assert!(kinds.contains(&DiffKind::Disc), "{kinds:?}");
}

/// More differences than `max_reconcile_symbols` can decode, the initiator's list over
/// `max_ids` but the acceptor's within it (a joiner holding one introduction, a large peer
/// initiating): the acceptor gives its whole list and the initiator settles the round with
/// `Hashes`, at most `max_ids` ids each way. Before, the round ended ("too many
/// differences") and the next, plain, one moved the ids of every differing range.
#[test]
fn an_acceptor_whose_list_fits_settles_a_difference_over_the_cap() {
    let cfg = GossipConfig {
        max_reconcile_symbols: 16,
        max_ids: 100,
        ..fennec()
    };
    let mut sim = Sim::new(2, cfg);
    let mut rng = Rng(23);
    let ops: Vec<MetaOp> = (0..460).map(|k| rng.op(T0 - k * HOUR)).collect();
    sim.store(1, ops[..450].to_vec());
    sim.store(0, ops[..60].to_vec());
    sim.store(0, ops[450..].to_vec());
    sim.advance(24 * HOUR);
    sim.round(1, 0);
    assert!(sim.errors.is_empty(), "{:?}", sim.errors);
    let ended = sim
        .events
        .iter()
        .any(|(_, e)| matches!(e, GossipEvent::Terminated { .. }));
    assert!(!ended, "{:?}", sim.events);
    assert_eq!(
        sim.op_count(0),
        70 + 100,
        "the initiator's Hashes: max_ids ids"
    );
    assert_eq!(sim.op_count(1), 460, "the acceptor's 10 extra ids fetched");
    let kinds: Vec<DiffKind> = sim.completed(1).iter().map(|s| s.diff).collect();
    assert_eq!(kinds, [DiffKind::Reconciled]);
    assert_eq!(recon_counts(&sim), (0, 1, 0));
    assert_eq!(
        sim.nodes[1].gossip.stats().reconciled_by_list,
        1,
        "the initiator settled"
    );
}

/// The same with an acceptor that holds nothing (a joiner without introductions, as when
/// every op is older than `introduce_recent_ops`, that a large peer initiates with first):
/// its whole list is empty, and giving it (`gives_list`) settles the round with `Hashes`
/// of `max_ids` ids. Before, an empty list could not be given (a request for the
/// initiator's list looked the same), the round ended "too many differences", and the
/// next, plain, one moved the ids of every differing range: the joiner bench's slow runs
/// (8.6–11.2 s against 4.0 s, 3.0–3.7 MB of gossip against 1.5).
#[test]
fn an_empty_acceptor_settles_a_difference_over_the_cap() {
    let cfg = GossipConfig {
        max_reconcile_symbols: 16,
        max_ids: 100,
        ..fennec()
    };
    let mut sim = Sim::new(2, cfg);
    let mut rng = Rng(29);
    sim.store(1, (0..450).map(|k| rng.op(T0 - k * HOUR)).collect());
    sim.advance(24 * HOUR);
    sim.round(1, 0);
    assert!(sim.errors.is_empty(), "{:?}", sim.errors);
    let ended = (sim.events.iter()).any(|(_, e)| matches!(e, GossipEvent::Terminated { .. }));
    assert!(!ended, "{:?}", sim.events);
    assert_eq!(sim.op_count(0), 100, "the initiator's Hashes: max_ids ids");
    assert_eq!(recon_counts(&sim), (0, 1, 0));
}

/// A difference that is a large part of both sets (each peer imported its own 1 500 ops; the
/// equal op counts hide it): after a few small sketch batches the acceptor asks for the
/// initiator's whole id list, cheaper than the ~4 500 symbols the sketch would need, and the
/// round settles at once. A joiner (no ops) sends its (empty) list at once.
#[test]
fn a_large_difference_goes_as_a_whole_list() {
    let mut sim = differences(&fennec(), 500, 3_000, 31);
    assert_eq!(sim.op_count(0), sim.op_count(1));
    let f = converge(&mut sim, 2);
    assert_eq!((f.rounds, sim.op_count(1)), (1, 3_500), "{f:?}");
    // 3 000 ids must cross (~34 B each); the whole list of 2 000 more. A sketch alone would
    // send ~12 000 symbols (~520 KB).
    assert!(f.bytes_after_detection <= 200_000, "{f:?}");
    assert!(sim.errors.is_empty(), "{:?}", sim.errors);
    assert_eq!(
        recon_counts(&sim),
        (0, 1, 0),
        "the acceptor compared the list"
    );
    let mut sim = Sim::new(2, fennec());
    let mut rng = Rng(3);
    sim.store(0, (0..5_000).map(|k| rng.op(T0 - k * HOUR)).collect());
    sim.advance(24 * HOUR);
    let f = converge(&mut sim, 1);
    assert_eq!(sim.op_count(1), 5_000);
    assert!(f.round_trips_after_detection <= 1, "{f:?}");
    assert!(f.bytes_after_detection <= 5_000 * 40, "{f:?}");
}

/// A reconciling round moves at most `max_ids` ids each way, as one message may carry, and
/// the rest crosses in later rounds. Both ways: the acceptor holds far more than the
/// initiator's whole id list (its answer, the ids only it holds, is cut), and the initiator
/// holds far more (its sketch decodes to more ids than `max_ids`; fetched at most that many).
/// Before the cut, the receiver called the round's message malformed: a joiner introduced
/// 16 384 of a 40 000-op import stayed at 16 384 ops.
#[test]
fn a_round_moves_at_most_max_ids_each_way_and_the_rest_follows() {
    let cfg = GossipConfig {
        max_ids: 100,
        ..fennec()
    };
    for (acceptor_holds_more, name) in [(true, "acceptor"), (false, "initiator")] {
        let mut sim = Sim::new(2, cfg.clone());
        let mut rng = Rng(17);
        let ops: Vec<MetaOp> = (0..450).map(|k| rng.op(T0 - k * HOUR)).collect();
        let (more, fewer) = if acceptor_holds_more { (0, 1) } else { (1, 0) };
        sim.store(more, ops.clone());
        sim.store(fewer, ops[..60].to_vec());
        sim.advance(24 * HOUR);
        sim.round(1, 0);
        assert!(sim.errors.is_empty(), "{name}: {:?}", sim.errors);
        assert_eq!(sim.op_count(fewer), 160, "{name}: one round, max_ids ids");
        let f = converge(&mut sim, 8);
        assert_eq!(sim.op_count(fewer), 450, "{name}");
        assert!(f.rounds >= 3, "{name}: {f:?}");
        assert!(sim.errors.is_empty(), "{name}: {:?}", sim.errors);
    }
}

/// A fennec peer and a plain one speak plain Kitsune2 (the Accept does not echo the flag).
#[test]
fn fennec_and_plain_peers_interoperate() {
    let mut sim = differences(&fennec(), 1_000, 20, 13);
    sim.nodes[0].gossip = Gossip::new(plain(), vec![Bytes::from(vec![0; 32])], SectorSet::FULL, 0);
    converge(&mut sim, 4);
    let kinds: Vec<DiffKind> = sim.completed(1).iter().map(|s| s.diff).collect();
    assert!(!kinds.contains(&DiffKind::Reconciled), "{kinds:?}");
    assert!(sim.errors.is_empty(), "{:?}", sim.errors);
}

/// Partition: node 2 is cut off while 0 and 1 receive new ops; its rounds time out. After the
/// heal one round with each peer repairs it.
#[test]
fn partition_then_heal() {
    let mut sim = Sim::new(3, fennec());
    let mut rng = Rng(17);
    let shared: Vec<MetaOp> = (0..300).map(|k| rng.op(T0 - k * 6 * HOUR)).collect();
    for i in 0..3 {
        sim.store(i, shared.clone());
    }
    sim.cut = vec![2];
    for (node, k) in [(0, 0), (1, 1), (0, 2), (1, 3)] {
        let op = rng.op(T0 + k * 1_000_000);
        sim.store(node, vec![op]);
    }
    sim.advance(2 * HOUR);
    sim.round(2, 0);
    sim.advance(6_000_000);
    let now = sim.now();
    sim.nodes[2].gossip.handle_timeout(now);
    sim.collect();
    assert!(
        sim.events
            .iter()
            .any(|(i, e)| *i == 2 && matches!(e, GossipEvent::TimedOut { .. }))
    );
    assert_eq!(sim.op_count(2), 300);
    sim.cut.clear();
    sim.advance(1_000_000);
    sim.round(2, 0);
    sim.advance(1_000_000);
    sim.round(2, 1);
    assert_eq!(sim.op_count(2), 304);
    assert!(sim.errors.is_empty(), "{:?}", sim.errors);
}

/// Issue 10, "better than Kitsune2": a dead peer does not stall repair (Kitsune2 #614: its one
/// round at a time waited 174 s on an unreachable peer). Node 0 starts its three rounds at
/// once, one with a dead peer (every message to it lost); the two live rounds complete and
/// bring the ops node 0 lacked in their own round trips (100 ms a message), while the dead
/// one waits out the 5 s initiate timeout beside them.
#[test]
fn a_dead_peer_times_out_beside_rounds_that_repair() {
    let mut sim = Sim::new(4, fennec());
    sim.latency = 100_000;
    let mut rng = Rng(23);
    let shared: Vec<MetaOp> = (0..200).map(|k| rng.op(T0 - k * 6 * HOUR)).collect();
    for i in 0..4 {
        sim.store(i, shared.clone());
    }
    let (a, b) = (rng.op(T0 - 3 * HOUR), rng.op(T0 - 5 * HOUR));
    sim.store(1, vec![a.clone()]);
    sim.store(2, vec![b.clone()]);
    sim.cut = vec![3];
    let start = sim.now();
    for i in [3, 1, 2] {
        let count = sim.op_count(0);
        sim.nodes[0].gossip.initiate(start, url(i), count).unwrap();
    }
    sim.pump();
    let repaired = sim.now().micros_since(start);
    assert_eq!(sim.op_count(0), 202, "both live rounds brought their op");
    assert_eq!(sim.completed(0).len(), 2);
    assert!(repaired < 2_000_000, "repaired after {repaired} µs");
    assert!(
        sim.events
            .iter()
            .all(|(_, e)| !matches!(e, GossipEvent::TimedOut { .. }))
    );
    let deadline = sim.nodes[0]
        .gossip
        .poll_timeout()
        .expect("the dead round is open");
    assert_eq!(deadline, start.plus(fennec().initiate_timeout));
    sim.nodes[0].gossip.handle_timeout(deadline);
    sim.collect();
    assert!(sim.events.iter().any(
        |(i, e)| *i == 0 && matches!(e, GossipEvent::TimedOut { peer, .. } if *peer == url(3))
    ));
    println!(
        "dead-peer-gossip: 2 live rounds repaired node 0 in {:.2} s; the round with the dead \
         peer timed out at {:.0} s",
        repaired as f64 / 1e6,
        deadline.micros_since(start) as f64 / 1e6
    );
}

/// High latency (2 s a message, under the round timeout) changes nothing but time.
#[test]
fn latency_within_the_timeouts_changes_nothing() {
    let mut sim = differences(&fennec(), 1_000, 30, 19);
    sim.latency = 2_000_000;
    let f = converge(&mut sim, 2);
    assert_eq!(
        (f.rounds, sim.op_count(0), sim.op_count(1)),
        (1, 1_030, 1_030)
    );
}

/// Opens a fennec round 1 → 0 up to node 0's Accept; returns the session id.
fn open_round(sim: &mut Sim) -> Bytes {
    // Ends node 1's side of the previous hostile round.
    sim.advance(20_000_000);
    let now = sim.now();
    sim.nodes[1].gossip.handle_timeout(now);
    let count = sim.nodes[1].dht.op_count();
    let to = sim.nodes[0].url.clone();
    sim.nodes[1].gossip.initiate(now, to, count).unwrap();
    sim.collect();
    let (_, _, init) = sim.flights.pop_front().unwrap();
    let GossipMsg::Initiate(m) = GossipMsg::decode(init.clone()).unwrap() else {
        panic!("expected Initiate");
    };
    assert!(m.fennec_reconcile);
    sim.deliver(0, &sim.nodes[1].url.clone(), init);
    sim.collect();
    sim.flights.clear();
    m.session_id
}

fn hostile(sim: &mut Sim, session: Bytes, batch: FennecReconcileMessage) -> GossipError {
    let msg = GossipMsg::DiscSectorsDiff(K2GossipDiscSectorsDiffMessage {
        session_id: session,
        accept_response: Some(AcceptResponseMessage::default()),
        snapshot: None,
        fennec_reconcile: Some(batch),
    });
    let from = sim.nodes[1].url.clone();
    sim.deliver(0, &from, msg.encode());
    sim.collect();
    let terminated = sim
        .flights
        .iter()
        .any(|(_, _, d)| matches!(GossipMsg::decode(d.clone()), Ok(GossipMsg::Terminate(_))));
    assert!(
        terminated,
        "a malformed sketch ends the round with Terminate"
    );
    sim.flights.clear();
    assert!(!sim.nodes[0].gossip.in_round_with(&from));
    let misbehaved = sim
        .events
        .iter()
        .any(|(i, e)| *i == 0 && matches!(e, GossipEvent::Misbehaved { .. }));
    assert!(misbehaved);
    sim.errors.pop().unwrap().1
}

#[test]
fn malformed_sketches_terminate_and_report() {
    let mut sim = differences(&fennec(), 200, 2, 23);
    let cases = [
        (vec![7u8; 10], 0, "reconcile: truncated or bad symbol"),
        (vec![0u8; 41], 5, "reconcile: batch out of sequence"),
        (vec![0u8; 41 * 17_000], 0, "reconcile: too many symbols"),
    ];
    for (symbols, from, want) in cases {
        let session = open_round(&mut sim);
        let batch = FennecReconcileMessage {
            from,
            symbols: symbols.into(),
            want: 0,
            ..Default::default()
        };
        assert_eq!(
            hostile(&mut sim, session, batch),
            GossipError::Malformed(want)
        );
    }
    // Whole id lists: cut short, or longer than max_ids.
    let lists = [
        (vec![7u8; 33], "reconcile: id list is not whole 32-byte ids"),
        (vec![7u8; 32 * 16_385], "reconcile: too many symbols"),
    ];
    for (ids, want) in lists {
        let session = open_round(&mut sim);
        let batch = FennecReconcileMessage {
            ids: ids.into(),
            whole_list: true,
            ..Default::default()
        };
        assert_eq!(
            hostile(&mut sim, session, batch),
            GossipError::Malformed(want)
        );
    }
    // A sketch claiming we hold ids we do not: forged.
    let session = open_round(&mut sim);
    let key = reconcile::Key::new(&session);
    let ids: Vec<reconcile::Id> = block_on(sim.nodes[0].store.retrieve_op_hashes_in_time_slice(
        crate::model::arc::DhtArc::FULL,
        Timestamp::from_micros(i64::MIN),
        Timestamp::from_micros(i64::MAX),
    ))
    .unwrap()
    .op_ids
    .iter()
    .map(|i| i.as_bytes().try_into().unwrap())
    .collect();
    // Our own symbols minus an id we never held: decodes to "only you hold [9; 32]".
    let mut symbols = reconcile::encode(key, &ids, 0, 8);
    let fake = reconcile::encode(key, &[[9u8; 32]], 0, 8);
    for (s, f) in symbols.iter_mut().zip(fake) {
        for (a, b) in s.sum.iter_mut().zip(f.sum) {
            *a ^= b;
        }
        s.check ^= f.check;
        s.count -= f.count;
    }
    let batch = FennecReconcileMessage {
        from: 0,
        symbols: reconcile::encode_symbols(&symbols).into(),
        want: 0,
        ..Default::default()
    };
    let err = hostile(&mut sim, session, batch);
    assert!(matches!(err, GossipError::Malformed(_)), "{err:?}");
}

/// A plain peer that never negotiated gets no sketch accepted.
#[test]
fn sketch_without_negotiation_is_refused() {
    let mut sim = differences(&plain(), 100, 0, 29);
    sim.nodes[1].gossip = Gossip::new(fennec(), vec![Bytes::from(vec![1; 32])], SectorSet::FULL, 1);
    let now = sim.now();
    let count = sim.nodes[1].dht.op_count();
    let to = sim.nodes[0].url.clone();
    sim.nodes[1].gossip.initiate(now, to, count).unwrap();
    sim.collect();
    let (_, from, init) = sim.flights.pop_front().unwrap();
    let GossipMsg::Initiate(m) = GossipMsg::decode(init.clone()).unwrap() else {
        panic!();
    };
    sim.deliver(0, &from, init);
    sim.collect();
    sim.flights.clear();
    let batch = FennecReconcileMessage {
        from: 0,
        symbols: Bytes::new(),
        want: 0,
        ..Default::default()
    };
    let err = hostile(&mut sim, m.session_id, batch);
    assert_eq!(err, GossipError::Malformed("reconcile: not negotiated"));
}

/// Every op id node `i` holds.
#[cfg(not(target_arch = "wasm32"))]
fn all_ids(sim: &Sim, i: usize) -> Vec<reconcile::Id> {
    let got = block_on(sim.nodes[i].store.retrieve_op_hashes_in_time_slice(
        crate::model::arc::DhtArc::FULL,
        Timestamp::from_micros(i64::MIN),
        Timestamp::from_micros(i64::MAX),
    ))
    .unwrap();
    got.op_ids
        .iter()
        .map(|i| i.as_bytes().try_into().unwrap())
        .collect()
}

/// Range-based reconciliation (the `negentropy` crate, unlimited frames) of the two nodes'
/// ids: (round trips, bytes). Items carry timestamp 0 (ordered by id): the cost of a range
/// walk does not depend on the order key.
#[cfg(not(target_arch = "wasm32"))]
fn negentropy_cost(sim: &Sim) -> (usize, u64) {
    use negentropy::{Id, Negentropy, NegentropyStorageVector};
    let storage = |i: usize| {
        let mut s = NegentropyStorageVector::new();
        for id in all_ids(sim, i) {
            s.insert(0, Id::from_byte_array(id)).unwrap();
        }
        s.seal().unwrap();
        s
    };
    let mut client = Negentropy::owned(storage(1), 0).unwrap();
    let mut server = Negentropy::owned(storage(0), 0).unwrap();
    let mut msg = client.initiate().unwrap();
    let (mut trips, mut bytes) = (0, msg.len() as u64);
    let (mut have, mut need) = (Vec::new(), Vec::new());
    loop {
        let reply = server.reconcile(&msg).unwrap();
        trips += 1;
        bytes += reply.len() as u64;
        match client
            .reconcile_with_ids(&reply, &mut have, &mut need)
            .unwrap()
        {
            Some(next) => {
                bytes += next.len() as u64;
                msg = next;
            }
            None => return (trips, bytes),
        }
    }
}

/// Kitsune2's scenarios and a store of `n` ops with 1, 10, 100 and 1 000 differences, fennec
/// mode against plain-Kitsune2 mode on the same data, plus the negentropy crate's range-based
/// reconciliation of the same sets: ONE JSON line (`npm run bench -- gossip`). `n` from
/// `FENNEC_GOSSIP_OPS` (default 100 000).
#[cfg(not(target_arch = "wasm32"))]
#[test]
#[ignore = "a figures report (seconds in release, minutes in debug): npm run bench -- gossip"]
fn gossip_reconcile_report() {
    let n: usize = std::env::var("FENNEC_GOSSIP_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let mut parts = Vec::new();
    for (name, cfg) in [("fennec", fennec()), ("plain", plain())] {
        let mut sim = Sim::new(2, cfg.clone());
        let mut rng = Rng(1);
        sim.store(0, (0..20).map(|k| rng.op(T0 - k * 60_000_000)).collect());
        let initial = converge(&mut sim, 5);
        let mut sim = Sim::new(2, cfg.clone());
        let mut rng = Rng(2);
        sim.store(0, (0..730).map(|k| rng.op(T0 - k * 12 * HOUR)).collect());
        sim.advance(24 * HOUR);
        let historical = converge(&mut sim, 30);
        parts.push(format!(
            "\"{name}_initial_sync\":{},\"{name}_historical_730\":{}",
            initial.json(),
            historical.json()
        ));
    }
    for d in [1usize, 10, 100, 1_000] {
        let mut sim = differences(&fennec(), n, d, 100 + d as u64);
        let (trips, bytes) = negentropy_cost(&sim);
        let t = std::time::Instant::now();
        let f = converge(&mut sim, 10);
        let fennec_ms = t.elapsed().as_millis();
        let mut sim = differences(&plain(), n, d, 100 + d as u64);
        let p = converge(&mut sim, 10);
        parts.push(format!(
            "\"d{d}\":{{\"fennec\":{},\"plain\":{},\"negentropy\":{{\"round_trips\":{trips},\
             \"bytes\":{bytes}}},\"fennec_sim_ms\":{fennec_ms}}}",
            f.json(),
            p.json()
        ));
    }
    println!("{{\"ops\":{n},{}}}", parts.join(","));
}

/// Node 1 stores half the ring, node 0 all of it: only the common half is reconciled, and
/// node 0's op count (which covers the other half too) does not size the first sketch.
#[test]
fn partial_arc_reconciles_the_common_half_only() {
    let mut sim = differences(&fennec(), 0, 0, 31);
    let mut rng = Rng(31);
    sim.store(
        0,
        (0..3_000)
            .map(|k| small_op(&mut rng, T0 - k * HOUR))
            .collect(),
    );
    sim.advance(24 * HOUR);
    let mut half = [0u32; 16];
    half[..8].fill(u32::MAX);
    let agent = Bytes::from(vec![1; 32]);
    sim.nodes[1].gossip = Gossip::new(fennec(), vec![agent], SectorSet(half), 1);
    let arc = crate::model::arc::DhtArc::from_sector_set(&half).unwrap();
    let (start, end) = (
        Timestamp::from_micros(i64::MIN),
        Timestamp::from_micros(i64::MAX),
    );
    let want = block_on(
        sim.nodes[0]
            .store
            .retrieve_op_hashes_in_time_slice(arc, start, end),
    )
    .unwrap()
    .op_ids
    .len() as u64;
    assert!(want > 1_000 && want < 2_000, "{want}");
    for _ in 0..2 {
        sim.advance(1_000_000);
        sim.round(1, 0);
    }
    assert_eq!(sim.op_count(1), want);
    let first = sim
        .log
        .iter()
        .find(|(t, _)| *t == T::DiscSectorsDiff)
        .unwrap();
    assert!(first.1 < 1_024, "first sketch {} B", first.1);
    assert!(sim.errors.is_empty(), "{:?}", sim.errors);
}

/// A node far behind (here: empty) takes one catch-up round at a time: the second of two
/// simultaneous Initiates from full peers is answered Busy, so only one whole list comes.
/// Once it caught up, both are accepted again.
#[test]
fn a_node_far_behind_takes_one_catch_up_round_at_a_time() {
    let mut sim = Sim::new(3, fennec());
    let mut rng = Rng(5);
    let ops: Vec<MetaOp> = (0..2_000).map(|k| rng.op(T0 - k * HOUR)).collect();
    sim.store(1, ops.clone());
    sim.store(2, ops);
    sim.advance(24 * HOUR);
    let both_initiate = |sim: &mut Sim| {
        let now = sim.now();
        for i in [1, 2] {
            let to = sim.nodes[0].url.clone();
            let count = sim.nodes[i].dht.op_count();
            sim.nodes[i].gossip.initiate(now, to, count).unwrap();
        }
        sim.pump();
    };
    both_initiate(&mut sim);
    assert_eq!(sim.nodes[0].gossip.stats().busy_sent, 1, "the second waits");
    assert_eq!(sim.op_count(0), 2_000, "the first round brought everything");
    sim.advance(20_000_000);
    both_initiate(&mut sim);
    assert_eq!(sim.nodes[0].gossip.stats().busy_sent, 1, "no longer behind");
    assert!(sim.errors.is_empty(), "{:?}", sim.errors);
}

/// A joiner's round with a full peer whose ops were all stored recently (inside "new ops
/// since"): the ids cross once, in the reconciliation's answer, not also in the Accept's new
/// ops list.
#[test]
fn a_joiner_gets_each_id_once_not_also_as_new_ops() {
    let mut sim = Sim::new(2, fennec());
    let mut rng = Rng(8);
    sim.store(0, (0..2_000).map(|k| rng.op(T0 - k * HOUR)).collect());
    sim.advance(60_000_000);
    let before = sim.bytes;
    sim.round(1, 0);
    assert_eq!(sim.op_count(1), 2_000);
    let bytes = sim.bytes - before;
    assert!(bytes <= 2_000 * 40, "{bytes} B for 2 000 ids of 32 B");
    assert!(sim.errors.is_empty(), "{:?}", sim.errors);
}

/// Two nodes holding the same 2 000 ops, all stored recently (inside "new ops since"), and one
/// op created now (too new for any slice) only at node 0. A reconciling round lists that op
/// alone: the snapshot compares the rest as equal. A plain-Kitsune2 round lists every op
/// stored since the bookmark, 2 000 ids each way.
#[test]
fn a_reconciling_round_lists_only_ops_too_new_for_the_model() {
    let run = |cfg: GossipConfig| {
        let mut sim = Sim::new(2, cfg);
        let mut rng = Rng(9);
        let ops: Vec<MetaOp> = (0..2_000).map(|k| rng.op(T0 - k * HOUR)).collect();
        sim.store(0, ops.clone());
        sim.store(1, ops);
        sim.advance(60_000_000);
        let head = rng.op(sim.now().as_micros());
        sim.store(0, vec![head]);
        let before = sim.bytes;
        sim.round(1, 0);
        assert_eq!(sim.op_count(1), 2_001, "the new op crossed");
        assert!(sim.errors.is_empty(), "{:?}", sim.errors);
        sim.bytes - before
    };
    let fennec_bytes = run(fennec());
    assert!(fennec_bytes < 2_000, "{fennec_bytes} B");
    let plain_bytes = run(plain());
    assert!(plain_bytes > 2 * 2_000 * 32, "{plain_bytes} B");
}
