//! An async driver for a [`Space`]: performs its store operations on an [`OpStore`], its sends
//! on a [`Transport`], its timers on a [`Clock`], on one single-threaded task (`futures`
//! only: `spawn_local` in the browser, a local executor with a virtual clock in tests).

use std::pin::pin;

use bytes::Bytes;
use futures::channel::{mpsc, oneshot};
use futures::future::{Fuse, LocalBoxFuture};
use futures::stream::FusedStream;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};

use super::{
    GetToken, GossipStep, GossipStepOutcome, Lane, NotifyError, Output, PublishToken, SendTicket,
    Space, SpaceError, SpaceEvent, StoreRequest, StoreResponse, StoreTicket,
};
use crate::api::Clock;
use crate::api::OpStore;
use crate::api::StoreError;
use crate::api::transport::{Transport, TransportEvent};
use crate::hash::HashMap;
use crate::model::agent::AgentInfoSigned;
use crate::model::id::OpId;
use crate::model::op::OpError;
use crate::model::time::Timestamp;
use crate::model::url::Url;

/// Performs one [`StoreRequest`] on `store`.
pub async fn perform(store: &dyn OpStore, request: StoreRequest) -> StoreResponse {
    match request {
        StoreRequest::Write(ops) => StoreResponse::Written(store.process_incoming_ops(ops).await),
        StoreRequest::Retrieve(ids) => StoreResponse::Retrieved(store.retrieve_ops(ids).await),
        StoreRequest::FilterMissing(ids) => {
            StoreResponse::Missing(store.filter_out_existing_ops(ids).await)
        }
        StoreRequest::PersistSliceHashes(writes) => StoreResponse::SliceHashesPersisted(
            crate::core::dht::store::persist(store, writes).await,
        ),
    }
}

/// Why a publish through [`Command::Publish`] or [`Command::PublishOp`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The payload is not a valid op (too large).
    #[error(transparent)]
    Op(#[from] OpError),
    /// The store write of this publish's batch failed.
    #[error("op store: {0}")]
    Store(StoreError),
}

/// Where the outcome of one publish goes: the op id once the store committed the op, or why
/// not. Dropped unanswered (the receiver sees `Canceled`) if the driver stops first.
pub type PublishReply = oneshot::Sender<Result<OpId, PublishError>>;

/// Why a [`Command::Notify`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyFailed {
    /// The space refused it; nothing was sent.
    #[error(transparent)]
    Refused(#[from] NotifyError),
    /// The transport could not send it (no connection could be opened, or it closed).
    #[error("sending failed: {0}")]
    Transport(String),
}

/// Where the outcome of one [`Command::Notify`] goes: `Ok` once the transport took the frame
/// (best effort: not that the peer read it). Dropped unanswered if the driver stops first.
pub type NotifyReply = oneshot::Sender<Result<(), NotifyFailed>>;

/// Where the outcome of one [`Command::Get`] goes: the verified op, or `None` (not found,
/// see [`Space::get_remote`]). Dropped unanswered if the driver stops first.
pub type GetReply = oneshot::Sender<Option<crate::model::op::Op>>;

/// A command from the app to a running space.
#[derive(Debug)]
pub enum Command {
    /// Publish a payload. The reply comes once the op was committed to the store (or its
    /// write failed); it is announced afterwards ([`SpaceEvent::Published`]).
    Publish(Bytes, PublishReply),
    /// Publish an op that carries its own `created_at` (imported data); replied to as
    /// [`Command::Publish`].
    PublishOp(crate::model::op::Op, PublishReply),
    /// Send host bytes to one peer agent ([`Space::send_notify`]).
    Notify(crate::model::id::AgentId, Bytes, NotifyReply),
    /// Look for an op on the network ([`Space::get_remote`]: one outside our arc, or any
    /// while we are catching up).
    Get(OpId, GetReply),
    /// Verified agent infos from bootstrap or preflight.
    AgentInfos(Vec<AgentInfoSigned>),
    /// The local URL changed.
    SetUrl(Option<Url>),
    /// The tab was hidden (`true`) or shown: [`Space::set_dozing`].
    SetDozing(bool),
    /// The tab runs again after a freeze or the back/forward cache: [`Space::resume`].
    Resume,
    /// Leave the space; the driver returns after the tombstone went out.
    Leave,
    /// The signal connection is back: re-probe members declared down, announce these local ops
    /// again ([`Space::reconnected`]).
    Reconnected(Vec<crate::model::id::OpId>),
    /// Answer with the gossip summary and the space's counters ([`Summary`]).
    Summary(oneshot::Sender<Summary>),
}

/// What [`Command::Summary`] answers: [`Space::gossip_summary`] and [`Space::stats`], taken
/// in one step of the space.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The gossip summary.
    pub gossip: super::GossipSummary,
    /// The space's counters (ops served, pushed, taken, ...).
    pub counters: super::SpaceStats,
}

/// Runs `space` until it left ([`Space::leave_finished`]: its sends got their results or the
/// grace passed; store operations always finish), the
/// transport shut down, or the command channel closed with nothing in flight. It first
/// builds the DHT model from `store` ([`Space::load_model`]; a failure is reported as
/// [`SpaceError::ModelLoad`]), runs waiting gossip ([`Space::gossip_step`], answering
/// membership frames meanwhile) whenever [`Space::gossip_ready`], and
/// every [`Output`] is carried out — sends on `transport` (results fed back), store
/// operations on `store` (concurrently, results fed back), closes, events to `events` — and
/// commands, transport events and timers are fed in (in that order of priority when several
/// are ready; a [`Command::Leave`] also ends a gossip step under way). Returns the space for
/// inspection.
pub async fn run_space<T, C>(
    mut space: Space,
    store: &dyn OpStore,
    transport: &T,
    clock: &C,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<SpaceEvent>,
) -> Space
where
    T: Transport + ?Sized,
    C: Clock + ?Sized,
{
    let mut sends: Sends<'_> = FuturesUnordered::new();
    let mut stores: Stores<'_> = FuturesUnordered::new();
    let mut replies = Replies::default();
    // The model first: no op is written before it holds what the store held.
    if let Err(e) = space.load_model(store, clock.now()).await {
        let _unheard = events.unbounded_send(SpaceEvent::Error(SpaceError::ModelLoad(e)));
    }
    let mut gossip_turn = true;
    loop {
        while let Some(o) = space.poll_output() {
            match o {
                Output::Send {
                    ticket,
                    to,
                    frame,
                    lane,
                } => sends.push(send(transport, ticket, to, frame, lane)),
                Output::Store { ticket, request } => {
                    stores.push(
                        perform(store, request)
                            .map(move |r| (ticket, r))
                            .boxed_local(),
                    );
                }
                Output::Close { peer, reason } => transport.close(&peer, &reason),
                Output::Event(SpaceEvent::NotifySent { ticket, result }) => {
                    if let Some(reply) = replies.notifies.remove(&ticket) {
                        let _gave_up = reply.send(result.map_err(NotifyFailed::Transport));
                    }
                }
                Output::Event(SpaceEvent::Got { token, op }) => {
                    if let Some(reply) = replies.gets.remove(&token) {
                        let _gave_up = reply.send(op);
                    }
                }
                Output::Event(e) => {
                    replies.settle(&e);
                    // Events are for whoever listens; an unbounded channel refuses only when
                    // no listener is left, and then they are dropped (publish outcomes do
                    // not depend on them).
                    let _unheard = events.unbounded_send(e);
                }
            }
        }
        if gossip_turn && space.gossip_ready() {
            let held = run_gossip_step(
                &mut space,
                store,
                transport,
                clock,
                &mut commands,
                &mut stores,
                &mut sends,
            )
            .await;
            for c in held.commands {
                take_command(&mut space, &mut replies, &events, clock.now(), c);
            }
            for e in held.events {
                if !handle_event(&mut space, clock.now(), e) {
                    return space;
                }
            }
            // Its outputs are carried out next; then one transport event, command or due
            // timer (whichever is ready) goes before the next gossip message.
            gossip_turn = false;
            continue;
        }
        gossip_turn = true;
        // Sends to a dead peer (no result until its connect times out) hold up a leave
        // for at most `LEAVE_GRACE`.
        if space.leave_finished(clock.now()) && stores.is_empty() {
            return space;
        }
        if commands.is_terminated() && sends.is_empty() && stores.is_empty() {
            return space;
        }
        // More gossip waits: only what is ready now goes first (no timer: a hidden tab's
        // timers are throttled to once a second and more).
        let sleep = if space.gossip_ready() {
            futures::future::ready(()).left_future()
        } else {
            let wake = space
                .poll_timeout()
                .unwrap_or(Timestamp(i64::MAX))
                .max(Timestamp(0));
            clock.sleep_until(wake).right_future()
        };
        let mut sleep = pin!(sleep.fuse());
        let mut event = pin!(transport.next_event().fuse());
        futures::select_biased! {
            r = stores.select_next_some() => {
                let (ticket, resp) = r;
                space.handle_store_response(clock.now(), ticket, resp);
            }
            r = sends.select_next_some() => {
                let (ticket, res) = r;
                space.handle_send_result(clock.now(), ticket, res);
            }
            // The app's commands before peers' frames: while peers flood us (a sync's fetch
            // responses), a publish must not wait until the flood is over. Commands are few
            // (the app's calls) and every queued one is taken at once.
            c = commands.select_next_some() => {
                // Take every command already queued, so a burst of publishes becomes one
                // store write.
                let mut next = Some(c);
                while let Some(c) = next {
                    take_command(&mut space, &mut replies, &events, clock.now(), c);
                    next = commands.try_recv().ok();
                }
            }
            e = event => if !handle_event(&mut space, clock.now(), e) {
                return space;
            },
            () = sleep => space.handle_timeout(clock.now()),
        }
    }
}

/// Store operations in flight, with their tickets.
type Stores<'a> = FuturesUnordered<LocalBoxFuture<'a, (StoreTicket, StoreResponse)>>;

/// Sends in flight, with their tickets and outcomes.
type Sends<'a> = FuturesUnordered<LocalBoxFuture<'a, (SendTicket, Result<(), String>)>>;

/// Hands `c` to the space; a failure no caller waits for (SetUrl, Leave) becomes an event.
fn take_command(
    space: &mut Space,
    replies: &mut Replies,
    events: &mpsc::UnboundedSender<SpaceEvent>,
    now: Timestamp,
    c: Command,
) {
    if let Err(e) = handle_command(space, replies, now, c) {
        let _unheard = events.unbounded_send(SpaceEvent::Error(e));
    }
}

/// What a gossip step held back for [`handle_command`] and [`handle_event`], each in the
/// order it came.
struct Held {
    commands: Vec<Command>,
    /// Transport events; `None`: the transport shut down.
    events: Vec<Option<TransportEvent>>,
}

/// One gossip step ([`Space::gossip_step`]): gossip reads the store while membership frames
/// are answered at once (a step on a large store takes seconds; probes come every 800 ms)
/// and SWIM's packets sent. Store operations and sends in flight keep being polled
/// meanwhile: an IndexedDB transaction whose next request is not issued right after the
/// last one completed commits, and the stalled operation then fails ("transaction has
/// finished"). Their results are handed in afterwards; the other transport events and the
/// commands are returned ([`Held`]).
///
/// A [`Command::Leave`] ends the step at once ([`GossipStepOutcome::abandoned`]): a closing
/// tab leaves in its `pagehide`, and the leave's write of the model must be issued before
/// the page is gone, not after a store read that will never complete.
async fn run_gossip_step<'s, 't, T, C>(
    space: &mut Space,
    store: &'s dyn OpStore,
    transport: &'t T,
    clock: &C,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    stores: &mut Stores<'s>,
    sends: &mut Sends<'t>,
) -> Held
where
    T: Transport + ?Sized,
    C: Clock + ?Sized,
{
    let mut stored = Vec::new();
    let mut sent = Vec::new();
    let mut held = Held {
        commands: Vec::new(),
        events: Vec::new(),
    };
    let mut shut_down = false;
    let outcome = {
        let GossipStep {
            handling,
            mut membership,
        } = space.gossip_step(store, clock.now());
        let mut handling = handling.fuse();
        loop {
            // After a shut-down the transport is not polled again (it would answer at once).
            let mut event = if shut_down {
                Fuse::terminated()
            } else {
                transport.next_event().fuse()
            };
            futures::select_biased! {
                outcome = handling => break outcome,
                r = stores.select_next_some() => stored.push(r),
                r = sends.select_next_some() => sent.push(r),
                c = commands.select_next_some() => {
                    let leave = matches!(c, Command::Leave);
                    held.commands.push(c);
                    if leave {
                        break GossipStepOutcome::abandoned();
                    }
                }
                e = event => match e {
                    Some(TransportEvent::Message { from, msg, len }) => {
                        if let Some((from, msg)) = membership.membership(clock.now(), from, msg) {
                            held.events.push(Some(TransportEvent::Message { from, msg, len }));
                        }
                        while let Some(o) = membership.poll_send() {
                            if let Output::Send { ticket, to, frame, lane } = o {
                                sends.push(send(transport, ticket, to, frame, lane));
                            }
                        }
                    }
                    Some(TransportEvent::Receiving { from }) => {
                        membership.heard(clock.now(), &from);
                    }
                    other => {
                        shut_down = other.is_none();
                        held.events.push(other);
                    }
                },
            }
        }
    };
    let now = clock.now();
    space.end_gossip_step(now, outcome);
    for (ticket, resp) in stored {
        space.handle_store_response(now, ticket, resp);
    }
    for (ticket, res) in sent {
        space.handle_send_result(now, ticket, res);
    }
    held
}

/// Sends `frame` to `to` on `lane`; resolves with the ticket and the outcome.
fn send<'t, T: Transport + ?Sized>(
    transport: &'t T,
    ticket: SendTicket,
    to: Url,
    frame: Bytes,
    lane: Lane,
) -> LocalBoxFuture<'t, (SendTicket, Result<(), String>)> {
    let sent = match lane {
        Lane::Reliable => transport.send(&to, frame),
        Lane::Datagram => transport.send_datagram(&to, frame),
    };
    sent.map(move |r| (ticket, r.map_err(|e| e.0)))
        .boxed_local()
}

/// Feeds one transport event to the space; `false` once the transport shut down.
fn handle_event(space: &mut Space, now: Timestamp, e: Option<TransportEvent>) -> bool {
    match e {
        Some(TransportEvent::Message { from, msg, .. }) => space.handle_message(now, from, msg),
        Some(TransportEvent::Receiving { from }) => space.receiving(now, &from),
        Some(TransportEvent::Disconnected { peer, .. }) => space.peer_disconnected(now, &peer),
        Some(TransportEvent::Connected { agents, .. }) => space.insert_agent_infos(now, agents),
        None => return false,
    }
    true
}

/// Commands waiting for their outcome: publishes by token, notifies by send ticket
/// ([`SpaceEvent::NotifySent`]), remote gets by token ([`SpaceEvent::Got`]).
#[derive(Default)]
struct Replies {
    publishes: HashMap<PublishToken, PublishReply>,
    notifies: HashMap<SendTicket, NotifyReply>,
    gets: HashMap<GetToken, GetReply>,
}

impl Replies {
    /// Answers the publish an event settles, if any. A caller that stopped waiting (dropped
    /// its receiver) needs no answer.
    fn settle(&mut self, e: &SpaceEvent) {
        let (token, outcome) = match e {
            SpaceEvent::OpStored { token, op_id } => (token, Ok(op_id.clone())),
            SpaceEvent::PublishFailed { token, error, .. } => {
                (token, Err(PublishError::Store(error.clone())))
            }
            _ => return,
        };
        if let Some(reply) = self.publishes.remove(token) {
            let _gave_up = reply.send(outcome);
        }
    }
}

/// Carries out one command. Publish outcomes go to their replies (now for an invalid op,
/// later through [`Replies::settle`]).
///
/// # Errors
/// Signing failed for [`Command::SetUrl`] or [`Command::Leave`].
fn handle_command(
    space: &mut Space,
    replies: &mut Replies,
    now: Timestamp,
    c: Command,
) -> Result<(), SpaceError> {
    match c {
        Command::Publish(payload, reply) => match space.publish(now, payload) {
            Ok(p) => {
                replies.publishes.insert(p.token, reply);
            }
            Err(e) => {
                let _gave_up = reply.send(Err(e.into()));
            }
        },
        Command::PublishOp(op, reply) => {
            let p = space.publish_op(op);
            replies.publishes.insert(p.token, reply);
        }
        Command::Notify(to, data, reply) => match space.send_notify(now, &to, data) {
            Ok(ticket) => {
                replies.notifies.insert(ticket, reply);
            }
            Err(e) => {
                let _gave_up = reply.send(Err(e.into()));
            }
        },
        Command::Get(id, reply) => {
            let token = space.get_remote(now, id);
            replies.gets.insert(token, reply);
        }
        Command::AgentInfos(infos) => space.insert_agent_infos(now, infos),
        Command::SetUrl(url) => space.set_url(now, url).map_err(SpaceError::Sign)?,
        Command::SetDozing(d) => space.set_dozing(now, d),
        Command::Resume => space.resume(now),
        Command::Leave => space.leave(now).map_err(SpaceError::Sign)?,
        Command::Reconnected(ops) => space.reconnected(now, ops),
        Command::Summary(reply) => {
            let summary = Summary {
                gossip: space.gossip_summary(),
                counters: space.stats(),
            };
            // A caller that stopped waiting needs no answer.
            let _gave_up = reply.send(summary);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each publish is answered by the event carrying its own token; a store failure that is
    /// not a publish's (serving a fetch, writing fetched ops) answers none.
    #[test]
    fn publishes_settle_by_token_only() {
        let mut p = Replies::default();
        let (tx1, mut rx1) = oneshot::channel();
        let (tx2, mut rx2) = oneshot::channel();
        p.publishes.insert(PublishToken(1), tx1);
        p.publishes.insert(PublishToken(2), tx2);
        let id = OpId::from_bytes(vec![1u8; 32]);
        let error = StoreError::QuotaExceeded("full".into());
        p.settle(&SpaceEvent::StoreFailed {
            error: error.clone(),
        });
        assert_eq!(rx1.try_recv(), Ok(None));
        assert_eq!(rx2.try_recv(), Ok(None));
        p.settle(&SpaceEvent::PublishFailed {
            token: PublishToken(2),
            op_id: id.clone(),
            error: error.clone(),
        });
        assert_eq!(rx1.try_recv(), Ok(None));
        assert_eq!(rx2.try_recv(), Ok(Some(Err(PublishError::Store(error)))));
        p.settle(&SpaceEvent::OpStored {
            token: PublishToken(1),
            op_id: id.clone(),
        });
        assert_eq!(rx1.try_recv(), Ok(Some(Ok(id))));
        assert!(p.publishes.is_empty());
    }
}
