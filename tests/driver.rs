//! The async driver `run_space` on a local executor with a virtual clock and an in-memory
//! transport: two spaces exchange an op, then leave.

#![cfg(not(target_arch = "wasm32"))]

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::task::{Poll, Waker};

use bytes::Bytes;
use futures::channel::{mpsc, oneshot};
use futures::executor::LocalPool;
use futures::future::{LocalBoxFuture, poll_fn};
use futures::task::LocalSpawnExt;
use futures::{FutureExt, StreamExt};

use fennec::api::Clock;
use fennec::api::OpStore;
use fennec::api::transport::{Transport, TransportError, TransportEvent};
use fennec::core::space::{Command, Space, SpaceConfig, SpaceEvent, run_space};
use fennec::model::agent::AgentKey;
use fennec::model::id::SpaceId;
use fennec::model::time::Timestamp;
use fennec::model::url::Url;
use fennec::store::MemOpStore;

const T0: i64 = 1_700_000_000_000_000;

#[derive(Default)]
struct ClockState {
    now: i64,
    sleepers: Vec<(i64, Waker)>,
}

#[derive(Clone, Default)]
struct VirtualClock(Rc<RefCell<ClockState>>);

impl VirtualClock {
    fn next_wake(&self) -> Option<i64> {
        self.0.borrow().sleepers.iter().map(|(t, _)| *t).min()
    }
    fn advance_to(&self, t: i64) {
        let wake: Vec<Waker> = {
            let mut s = self.0.borrow_mut();
            s.now = s.now.max(t);
            let now = s.now;
            let (due, rest): (Vec<_>, Vec<_>) =
                s.sleepers.drain(..).partition(|(at, _)| *at <= now);
            s.sleepers = rest;
            due.into_iter().map(|(_, w)| w).collect()
        };
        wake.into_iter().for_each(Waker::wake);
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.borrow().now)
    }
    fn sleep_until(&self, at: Timestamp) -> LocalBoxFuture<'_, ()> {
        poll_fn(move |cx| {
            let mut s = self.0.borrow_mut();
            if s.now >= at.0 {
                Poll::Ready(())
            } else {
                s.sleepers.push((at.0, cx.waker().clone()));
                Poll::Pending
            }
        })
        .boxed_local()
    }
}

type Routes = Rc<RefCell<HashMap<Url, mpsc::UnboundedSender<TransportEvent>>>>;

struct MemTransport {
    me: Url,
    routes: Routes,
    inbox: RefCell<mpsc::UnboundedReceiver<TransportEvent>>,
}

impl Transport for MemTransport {
    fn send(&self, to: &Url, frame: Bytes) -> LocalBoxFuture<'_, Result<(), TransportError>> {
        // Decoded once, as a real transport does.
        let len = frame.len();
        let r = match (
            self.routes.borrow().get(to),
            fennec::WireMessage::decode(frame),
        ) {
            (Some(tx), Ok(msg)) => tx
                .unbounded_send(TransportEvent::Message {
                    from: self.me.clone(),
                    msg,
                    len,
                })
                .map_err(|e| TransportError(e.to_string())),
            (None, _) => Err(TransportError("no route".into())),
            (_, Err(e)) => Err(TransportError(e.to_string())),
        };
        async move { r }.boxed_local()
    }
    fn close(&self, _peer: &Url, _reason: &str) {}
    fn next_event(&self) -> LocalBoxFuture<'_, Option<TransportEvent>> {
        poll_fn(move |cx| self.inbox.borrow_mut().poll_next_unpin(cx)).boxed_local()
    }
}

fn url(n: u8) -> Url {
    Url::parse(&format!("ws://mem.test:80/p{n}")).unwrap()
}

#[test]
fn run_space_moves_an_op_between_two_spaces_on_virtual_time() {
    let clock = VirtualClock::default();
    clock.advance_to(T0);
    let routes: Routes = Rc::default();
    let space_id = SpaceId::from_bytes(vec![8u8; 32]);
    let mut pool = LocalPool::new();
    let mut cmd = Vec::new();
    let mut evs = Vec::new();
    let mut infos = Vec::new();
    let mut stores = Vec::new();
    let finished = Rc::new(std::cell::Cell::new(0));
    for n in 1..=2u8 {
        let key = AgentKey::from_secret_bytes(&[n; 32]);
        let agent = key.agent_id();
        let space = Space::new(
            SpaceConfig::new(space_id.clone()),
            Box::new(key),
            agent,
            Some(url(n)),
            clock.now(),
            n as u64,
        )
        .unwrap();
        infos.push(space.local_agent_info().clone());
        let (tx, rx) = mpsc::unbounded();
        routes.borrow_mut().insert(url(n), tx);
        let transport = MemTransport {
            me: url(n),
            routes: routes.clone(),
            inbox: RefCell::new(rx),
        };
        let c = clock.clone();
        let store = MemOpStore::new(move || c.now());
        stores.push(store.reopen());
        let (ctx, crx) = mpsc::unbounded();
        let (etx, erx) = mpsc::unbounded();
        cmd.push(ctx);
        evs.push(erx);
        let c = clock.clone();
        let done = finished.clone();
        pool.spawner()
            .spawn_local(async move {
                let s = run_space(space, &store, &transport, &c, crx, etx).await;
                assert!(s.has_left());
                done.set(done.get() + 1);
            })
            .unwrap();
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
    for _ in 0..1000 {
        pool.run_until_stalled();
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
        if received.is_some() {
            break;
        }
        match clock.next_wake() {
            Some(t) => clock.advance_to(t),
            None => break,
        }
    }
    let (op_id, payload) = received.expect("the op never arrived");
    assert_eq!(Some(op_id.clone()), id);
    assert_eq!(&payload[..], b"over the driver");
    let held = futures::executor::block_on(stores[1].retrieve_ops(vec![op_id])).unwrap();
    assert_eq!(held.len(), 1);
    // Both leave; the driver tasks end.
    for c in &cmd {
        c.unbounded_send(Command::Leave).unwrap();
    }
    for _ in 0..100 {
        pool.run_until_stalled();
        if finished.get() == 2 {
            break;
        }
        match clock.next_wake() {
            Some(t) => clock.advance_to(t),
            None => break,
        }
    }
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
