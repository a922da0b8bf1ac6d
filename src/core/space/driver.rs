//! An async driver for a [`Space`]: performs its store operations on an [`OpStore`], its sends
//! on a [`Transport`], its timers on a [`Clock`], on one single-threaded task (`futures`
//! only: `spawn_local` in the browser, a local executor with a virtual clock in tests).

use std::pin::pin;

use bytes::Bytes;
use futures::channel::{mpsc, oneshot};
use futures::stream::FusedStream;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};

use super::{Output, Space, SpaceEvent, StoreRequest, StoreResponse};
use crate::api::Clock;
use crate::api::OpStore;
use crate::api::transport::{Transport, TransportEvent};
use crate::model::agent::AgentInfoSigned;
use crate::model::id::OpId;
use crate::model::op::OpError;
use crate::model::time::Timestamp;
use crate::model::url::Url;

/// Performs one [`StoreRequest`] on `store`.
pub async fn perform<S: OpStore + ?Sized>(store: &S, request: StoreRequest) -> StoreResponse {
    match request {
        StoreRequest::Write(ops) => StoreResponse::Written(store.process_incoming_ops(ops).await),
        StoreRequest::Retrieve(ids) => StoreResponse::Retrieved(store.retrieve_ops(ids).await),
        StoreRequest::FilterMissing(ids) => {
            StoreResponse::Missing(store.filter_out_existing_ops(ids).await)
        }
        StoreRequest::NewOpIds {
            arc,
            since,
            limit_bytes,
        } => StoreResponse::NewOpIds(store.retrieve_op_ids_bounded(arc, since, limit_bytes).await),
    }
}

/// A command from the app to a running space.
#[derive(Debug)]
pub enum Command {
    /// Publish a payload; the reply is the op id (or why not). The op is stored and announced
    /// afterwards ([`SpaceEvent::OpStored`], [`SpaceEvent::Published`]).
    Publish(Bytes, oneshot::Sender<Result<OpId, OpError>>),
    /// Publish an op that carries its own `created_at` (imported data); the reply is its id.
    PublishOp(crate::model::op::Op, oneshot::Sender<OpId>),
    /// Verified agent infos from bootstrap or preflight.
    AgentInfos(Vec<AgentInfoSigned>),
    /// The local URL changed.
    SetUrl(Option<Url>),
    /// Leave the space; the driver returns after the tombstone went out.
    Leave,
}

/// Runs `space` until it left, the transport shut down, or the command channel closed with
/// nothing in flight:
/// every [`Output`] is carried out — sends on `transport` (results fed back), store
/// operations on `store` (concurrently, results fed back), closes, events to `events` — and
/// transport events, commands and timers are fed in. Returns the space for inspection.
pub async fn run_space<S, T, C>(
    mut space: Space,
    store: &S,
    transport: &T,
    clock: &C,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<SpaceEvent>,
) -> Space
where
    S: OpStore + ?Sized,
    T: Transport + ?Sized,
    C: Clock + ?Sized,
{
    let mut sends = FuturesUnordered::new();
    let mut stores = FuturesUnordered::new();
    loop {
        while let Some(o) = space.poll_output() {
            match o {
                Output::Send { ticket, to, frame } => {
                    sends.push(
                        transport
                            .send(&to, frame)
                            .map(move |r| (ticket, r.map_err(|e| e.0))),
                    );
                }
                Output::Store { ticket, request } => {
                    stores.push(
                        perform(store, request)
                            .map(move |r| (ticket, r))
                            .boxed_local(),
                    );
                }
                Output::Close { peer, reason } => transport.close(&peer, &reason),
                Output::Event(e) => {
                    let _ = events.unbounded_send(e);
                }
            }
        }
        if space.has_left() && sends.is_empty() && stores.is_empty() {
            return space;
        }
        if commands.is_terminated() && sends.is_empty() && stores.is_empty() {
            return space;
        }
        let wake = space
            .poll_timeout()
            .unwrap_or(Timestamp(i64::MAX))
            .max(Timestamp(0));
        let mut sleep = pin!(clock.sleep_until(wake).fuse());
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
            e = event => match e {
                Some(TransportEvent::Message { from, msg, .. }) => {
                    space.handle_message(clock.now(), from, msg);
                }
                Some(TransportEvent::Disconnected { peer, .. }) => {
                    space.peer_disconnected(clock.now(), &peer);
                }
                Some(TransportEvent::Connected { agents, .. }) => {
                    space.insert_agent_infos(clock.now(), agents);
                }
                None => return space,
            },
            c = commands.select_next_some() => {
                // Take every command already queued, so a burst of publishes becomes one
                // store write.
                let mut next = Some(c);
                while let Some(c) = next {
                    handle_command(&mut space, clock.now(), c);
                    next = commands.try_recv().ok();
                }
            }
            () = sleep => space.handle_timeout(clock.now()),
        }
    }
}

fn handle_command(space: &mut Space, now: Timestamp, c: Command) {
    match c {
        Command::Publish(payload, reply) => {
            let _ = reply.send(space.publish(now, payload));
        }
        Command::PublishOp(op, reply) => {
            let _ = reply.send(space.publish_op(op));
        }
        Command::AgentInfos(infos) => space.insert_agent_infos(now, infos),
        Command::SetUrl(url) => {
            let _ = space.set_url(now, url);
        }
        Command::Leave => {
            let _ = space.leave(now);
        }
    }
}
