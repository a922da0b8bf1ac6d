//! The async driver `run_space` on a local executor with the shared harness's virtual clock
//! and in-memory transport (`fennec::testing`): two spaces exchange an op, then leave.

#![cfg(not(target_arch = "wasm32"))]

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures::channel::{mpsc, oneshot};
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;

use fennec::api::Clock;
use fennec::api::OpStore;
use fennec::api::Transport;
use fennec::core::space::{Command, Space, SpaceConfig, SpaceEvent, run_space};
use fennec::model::agent::AgentKey;
use fennec::model::id::SpaceId;
use fennec::model::time::Timestamp;
use fennec::model::url::Url;
use fennec::store::MemOpStore;
use fennec::testing::{MemNetwork, SlowReads, VirtualClock, run_until};

const T0: i64 = 1_700_000_000_000_000;

fn url(n: u8) -> Url {
    Url::parse(&format!("ws://mem.test:80/p{n}")).unwrap()
}

#[test]
fn run_space_moves_an_op_between_two_spaces_on_virtual_time() {
    let clock = VirtualClock::new(Timestamp(T0));
    let net = MemNetwork::new();
    let space_id = SpaceId::from_bytes(vec![8u8; 32]);
    let mut pool = LocalPool::new();
    let mut cmd = Vec::new();
    let mut evs = Vec::new();
    let mut infos = Vec::new();
    let mut stores = Vec::new();
    let finished = Rc::new(Cell::new(0));
    for n in 1..=2u8 {
        let store = MemOpStore::new(clock.reader());
        stores.push(store.reopen());
        let done = finished.clone();
        let (ctx, erx, info) = spawn_driver(
            &pool,
            &clock,
            &net,
            &space_id,
            n,
            Rc::new(store),
            move |s| {
                assert!(s.has_left());
                done.set(done.get() + 1);
            },
        );
        infos.push(info);
        cmd.push(ctx);
        evs.push(erx);
    }
    for c in &cmd {
        c.unbounded_send(Command::AgentInfos(infos.clone()))
            .unwrap();
    }
    let (rtx, mut rrx) = oneshot::channel();
    cmd[0]
        .unbounded_send(Command::Publish(
            Bytes::from_static(b"over the driver"),
            rtx,
        ))
        .unwrap();
    let mut received = None;
    let mut id = None;
    run_until(
        &mut pool,
        &clock,
        || {
            if id.is_none()
                && let Ok(Some(r)) = rrx.try_recv()
            {
                id = Some(r.unwrap());
            }
            while let Ok(e) = evs[1].try_recv() {
                if let SpaceEvent::OpReceived { op_id, op, .. } = e {
                    received = Some((op_id, op.payload));
                }
            }
            received.is_some()
        },
        1000,
    );
    let (op_id, payload) = received.expect("the op never arrived");
    assert_eq!(Some(op_id.clone()), id);
    assert_eq!(&payload[..], b"over the driver");
    let held = futures::executor::block_on(stores[1].retrieve_ops(vec![op_id])).unwrap();
    assert_eq!(held.len(), 1);
    // Both leave; the driver tasks end.
    for c in &cmd {
        c.unbounded_send(Command::Leave).unwrap();
    }
    run_until(&mut pool, &clock, || finished.get() == 2, 100);
    assert_eq!(finished.get(), 2, "both driver tasks returned");
    let mut left = 0;
    for e in &mut evs {
        while let Ok(ev) = e.try_recv() {
            if ev == SpaceEvent::Left {
                left += 1;
            }
        }
    }
    assert_eq!(left, 2);
}

/// The driver of a space of agent 1 at `url(1)` with no peer yet, on `transport` and `store`,
/// spawned on the returned pool (it runs when the pool does); its commands' sender.
fn lone_driver(
    clock: &VirtualClock,
    transport: fennec::testing::MemTransport,
    store: MemOpStore,
) -> (LocalPool, mpsc::UnboundedSender<Command>) {
    let key = AgentKey::from_secret_bytes(&[1; 32]);
    let agent = key.agent_id();
    let cfg = SpaceConfig::new(SpaceId::from_bytes(vec![9u8; 32]));
    let space = Space::new(cfg, Box::new(key), agent, Some(url(1)), clock.now(), 1).unwrap();
    let (ctx, crx) = mpsc::unbounded();
    let (etx, _erx) = mpsc::unbounded();
    let pool = LocalPool::new();
    let c = clock.clone();
    pool.spawner()
        .spawn_local(async move {
            run_space(space, &store, &transport, &c, crx, etx).await;
        })
        .unwrap();
    (pool, ctx)
}

/// Runs `pool` until `rx` is answered (at most 100 steps of virtual time).
fn answer<T>(pool: &mut LocalPool, clock: &VirtualClock, mut rx: oneshot::Receiver<T>) -> T {
    let mut got = None;
    run_until(
        pool,
        clock,
        || {
            got = got.take().or_else(|| rx.try_recv().ok().flatten());
            got.is_some()
        },
        100,
    );
    got.expect("no answer")
}

/// `publishMany`'s rule (src/browser/peer.rs): publishes queued before the driver runs are ONE
/// store write. Shown with a store quota that the batch as a whole exceeds but each op alone
/// fits: one write fails them all (separate writes would store the first ones).
#[test]
fn publishes_queued_together_are_one_store_write() {
    let clock = VirtualClock::new(Timestamp(T0));
    let net = MemNetwork::new();
    let store = MemOpStore::new(clock.reader()).with_quota(200);
    let (mut pool, ctx) = lone_driver(&clock, net.endpoint(url(1)), store);
    let publish_all = |n: usize, len: usize| {
        (0..n)
            .map(|i| {
                let (tx, rx) = oneshot::channel();
                let op = fennec::model::op::Op::new(Timestamp(T0 + i as i64), vec![i as u8; len])
                    .unwrap();
                ctx.unbounded_send(Command::PublishOp(op, tx)).unwrap();
                rx
            })
            .collect::<Vec<_>>()
    };
    let mut settle = |rxs: &mut Vec<oneshot::Receiver<_>>| {
        let mut out = Vec::new();
        run_until(
            &mut pool,
            &clock,
            || {
                out.extend(rxs.iter_mut().filter_map(|r| r.try_recv().ok().flatten()));
                out.len() == rxs.len()
            },
            100,
        );
        out.iter().map(Result::is_ok).collect::<Vec<bool>>()
    };
    // 2 x 40 bytes fit the quota: both stored.
    assert_eq!(settle(&mut publish_all(2, 40)), [true; 2]);
    // 5 x 60 bytes queued together: one write over the quota, all refused.
    assert_eq!(settle(&mut publish_all(5, 60)), [false; 5]);
    // One of them alone still fits: separate writes would have stored some.
    assert_eq!(settle(&mut publish_all(1, 60)), [true]);
}

/// The app's commands go before peers' frames: a command queued behind 500 frames already in
/// the transport is handled first (during a sync's flood of fetch responses, a `publishMany`
/// would otherwise wait until the flood is over). The frames are notifies for another space,
/// so each one handled shows in `wrong_space`.
#[test]
fn commands_go_before_queued_peer_frames() {
    let clock = VirtualClock::new(Timestamp(T0));
    let net = MemNetwork::new();
    let transport = net.endpoint(url(1));
    let flood = net.endpoint(url(2));
    let other = SpaceId::from_bytes(vec![3u8; 32]);
    for i in 0..500u32 {
        let frame = fennec::wire::encode_notify(&other, i.to_be_bytes().to_vec());
        futures::executor::block_on(flood.send(&url(1), frame)).unwrap();
    }
    let (mut pool, ctx) = lone_driver(&clock, transport, MemOpStore::new(clock.reader()));
    let summary = |ctx: &mpsc::UnboundedSender<Command>| {
        let (tx, rx) = oneshot::channel();
        ctx.unbounded_send(Command::Summary(tx)).unwrap();
        rx
    };
    // Queued before the driver first runs, behind the 500 frames.
    let first = summary(&ctx);
    let first = answer(&mut pool, &clock, first);
    assert_eq!(
        first.counters.wrong_space, 0,
        "the command waited behind peer frames"
    );
    // The frames are handled after it.
    let second = answer(&mut pool, &clock, summary(&ctx));
    assert_eq!(second.counters.wrong_space, 500);
}

/// Spawns the driver of agent `n` at `url(n)` in `space_id` on `store`, which hands the space
/// to `returned` when it returns; its commands' sender, its events and its signed agent info.
fn spawn_driver(
    pool: &LocalPool,
    clock: &VirtualClock,
    net: &MemNetwork,
    space_id: &SpaceId,
    n: u8,
    store: Rc<dyn OpStore>,
    returned: impl FnOnce(Space) + 'static,
) -> (
    mpsc::UnboundedSender<Command>,
    mpsc::UnboundedReceiver<SpaceEvent>,
    fennec::model::agent::AgentInfoSigned,
) {
    let key = AgentKey::from_secret_bytes(&[n; 32]);
    let agent = key.agent_id();
    let cfg = SpaceConfig::new(space_id.clone());
    let space = Space::new(
        cfg,
        Box::new(key),
        agent,
        Some(url(n)),
        clock.now(),
        n as u64,
    )
    .unwrap();
    let info = space.local_agent_info().clone();
    let transport = net.endpoint(url(n));
    let (ctx, crx) = mpsc::unbounded();
    let (etx, erx) = mpsc::unbounded();
    let c = clock.clone();
    pool.spawner()
        .spawn_local(async move {
            returned(run_space(space, &*store, &transport, &c, crx, etx).await);
        })
        .unwrap();
    (ctx, erx, info)
}

/// Two drivers in one space that know each other: A (`url(1)`) on an in-memory store, B
/// (`url(2)`) on a [`SlowReads`] one (no delay until set). Keep every field bound to the end
/// of the test: a driver whose command sender is dropped returns once it is idle.
struct FastAndSlow {
    pool: LocalPool,
    slow: Rc<SlowReads>,
    a_cmd: mpsc::UnboundedSender<Command>,
    a_events: mpsc::UnboundedReceiver<SpaceEvent>,
    b_cmd: mpsc::UnboundedSender<Command>,
    _b_events: mpsc::UnboundedReceiver<SpaceEvent>,
}

/// [`FastAndSlow`] in the space of id `[space; 32]`.
fn fast_and_slow(clock: &VirtualClock, space: u8) -> FastAndSlow {
    let net = MemNetwork::new();
    let space_id = SpaceId::from_bytes(vec![space; 32]);
    let pool = LocalPool::new();
    let slow = Rc::new(SlowReads::new(
        MemOpStore::new(clock.reader()),
        clock.clone(),
    ));
    let fast = Rc::new(MemOpStore::new(clock.reader()));
    let (a_cmd, a_events, a_info) = spawn_driver(&pool, clock, &net, &space_id, 1, fast, drop);
    let (b_cmd, b_events, b_info) =
        spawn_driver(&pool, clock, &net, &space_id, 2, slow.clone(), drop);
    for c in [&a_cmd, &b_cmd] {
        c.unbounded_send(Command::AgentInfos(vec![a_info.clone(), b_info.clone()]))
            .unwrap();
    }
    FastAndSlow {
        pool,
        slow,
        a_cmd,
        a_events,
        b_cmd,
        _b_events: b_events,
    }
}

/// Membership probes are answered while a gossip step waits on the store: B's gossip reads
/// take 5 s each (a large IndexedDB store), A probes every 800 ms and declares a member down
/// 1.6 s after suspecting it. A driver that awaited the step before taking the next frame
/// left A's probes unanswered for seconds: A declared B down, which also ended their round
/// and closed the connection.
#[test]
fn probes_are_answered_while_gossip_waits_on_the_store() {
    let clock = VirtualClock::new(Timestamp(T0));
    let FastAndSlow {
        pool,
        slow,
        a_cmd,
        mut a_events,
        b_cmd: _b_cmd,
        _b_events,
    } = fast_and_slow(&clock, 7);
    // A recent op, held by both, is what rounds list from the store.
    let (tx, _published) = oneshot::channel();
    a_cmd
        .unbounded_send(Command::Publish(Bytes::from_static(b"recent"), tx))
        .unwrap();
    let mut pool = pool;
    let mut downs = 0;
    let mut run_to = |secs: i64, downs: &mut usize| {
        let end = T0 + secs * 1_000_000;
        run_until(&mut pool, &clock, || clock.now().0 >= end, 100_000);
        while let Ok(e) = a_events.try_recv() {
            if matches!(e, SpaceEvent::MemberDown { .. }) {
                *downs += 1;
            }
        }
    };
    run_to(10, &mut downs);
    assert_eq!(downs, 0, "B went down with a fast store");
    slow.set_delay(Duration::from_secs(5));
    run_to(60, &mut downs);
    assert!(
        slow.delayed_reads() >= 3,
        "B's gossip never read the slow store"
    );
    assert_eq!(
        downs, 0,
        "A declared B down while B's gossip waited on its store"
    );
}

/// A leave does not wait for a gossip step: a closing tab leaves in its `pagehide`, and the
/// leave's write of the DHT model must be issued while the page still runs. B imports old
/// ops in bulk (their slice hashes wait `PERSIST_AFTER_INTAKE`, 30 s), then its gossip reads
/// start to take an hour (a read the closing page will never see complete); B is told to
/// leave while a step waits on one. The hashes must be in B's store a virtual second later.
#[test]
fn a_leave_during_a_gossip_step_writes_the_model_at_once() {
    let clock = VirtualClock::new(Timestamp(T0));
    let FastAndSlow {
        pool,
        slow,
        a_cmd: _a_cmd,
        a_events: _a_events,
        b_cmd,
        _b_events,
    } = fast_and_slow(&clock, 8);
    let day = 86_400_000_000i64;
    for i in 0..100i64 {
        let op = fennec::model::op::Op::new(Timestamp(T0 - 400 * day + i * day), vec![i as u8; 8])
            .unwrap();
        let (tx, _published) = oneshot::channel();
        b_cmd.unbounded_send(Command::PublishOp(op, tx)).unwrap();
    }
    // A recent op: rounds list it from the store, so each step of B's reads it.
    let (tx, _published) = oneshot::channel();
    b_cmd
        .unbounded_send(Command::Publish(Bytes::from_static(b"recent"), tx))
        .unwrap();
    let mut pool = pool;
    let end = T0 + 5_000_000;
    run_until(&mut pool, &clock, || clock.now().0 >= end, 100_000);
    let hashes = |slow: &SlowReads| {
        futures::executor::block_on(slow.retrieve_sector_slice_hashes())
            .unwrap()
            .len()
    };
    assert!(hashes(&slow) <= 1, "only the watermark before the leave");

    slow.set_delay(Duration::from_secs(3600));
    let before = slow.delayed_reads();
    run_until(&mut pool, &clock, || slow.delayed_reads() > before, 100_000);
    assert!(slow.delayed_reads() > before, "no gossip read of B's began");
    slow.set_delay(Duration::ZERO);
    b_cmd.unbounded_send(Command::Leave).unwrap();
    let end = clock.now().0 + 1_000_000;
    run_until(&mut pool, &clock, || clock.now().0 >= end, 100_000);
    let written = hashes(&slow);
    assert!(
        written > 50,
        "slice hash records a second after the leave: {written}"
    );
}
