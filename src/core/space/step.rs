//! A gossip step split from membership, so that SWIM probes are answered while gossip waits
//! on the store ([`Space::gossip_step`]).
//!
//! A gossip message can take seconds to handle on a large store (a joiner filtering 30 000
//! offered ids, then listing its own ids of thousands of ranges), all of it awaiting
//! IndexedDB. With probes every 800 ms and down after 1.6 s of suspicion
//! ([`crate::core::membership::MembershipConfig`]), a driver that took no frame meanwhile got
//! its tab declared down by the very peer it was gossiping with, which ended the round and
//! closed the connection. The step borrows only the gossip state, the DHT model and the peer
//! store; [`MembershipPart`] borrows membership and the outbox, so both run at once.

use std::collections::VecDeque;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::LocalBoxFuture;

use super::{Output, SendKind, SendTicket, Space, SpaceStats, gossip::PeerInfos};
use crate::api::OpStore;
use crate::core::dht::Dht;
use crate::core::gossip::{Ctx, Gossip, GossipError};
use crate::core::membership::{Membership, MembershipError};
use crate::core::peer_store::PeerStore;
use crate::hash::HashMap;
use crate::model::agent::AgentInfoSigned;
use crate::model::id::AgentId;
use crate::model::time::Timestamp;
use crate::model::url::Url;
use crate::wire::{WireMessage, encode_membership};

/// One inbound gossip message being handled, and the part of its space that answers
/// membership meanwhile. Poll [`Self::handling`] to its end while feeding membership frames
/// to [`MembershipPart::membership`] and carrying out [`MembershipPart::poll_send`]; then
/// drop the step and hand the outcome to [`Space::end_gossip_step`].
pub struct GossipStep<'a> {
    /// Handles the message ([`crate::core::gossip::Gossip::handle`]) over the model and the
    /// store.
    pub handling: LocalBoxFuture<'a, GossipStepOutcome>,
    /// Answers membership frames while `handling` waits.
    pub membership: MembershipPart<'a>,
}

/// What a [`GossipStep`] ended with, for [`Space::end_gossip_step`].
#[derive(Debug)]
pub struct GossipStepOutcome(Result<(), GossipError>);

impl GossipStepOutcome {
    /// The driver dropped [`GossipStep::handling`] before its end, to leave the space at
    /// once (a closing tab cannot wait for a store read). Gossip only reads the model and
    /// the store, so both are as they were; the round the message belonged to ends with the
    /// leave.
    pub fn abandoned() -> Self {
        GossipStepOutcome(Ok(()))
    }
}

/// The part of a space that sends frames: its output queue, the kinds of sends awaiting a
/// result, the ticket counter and the send counters.
pub(super) struct Outbox<'a> {
    pub(super) out: &'a mut VecDeque<Output>,
    pub(super) sends: &'a mut HashMap<SendTicket, (Url, SendKind)>,
    pub(super) next_ticket: &'a mut u64,
    pub(super) stats: &'a mut SpaceStats,
}

impl Outbox<'_> {
    /// Queues `frame` for `to`; its result comes back by ticket ([`Space::handle_send_result`]).
    /// Membership packets go on the datagram lane (SWIM tolerates loss), the rest reliable.
    pub(super) fn send(&mut self, to: Url, frame: Bytes, kind: SendKind) {
        let ticket = *self.next_ticket;
        *self.next_ticket += 1;
        self.stats.frames_sent += 1;
        self.stats.bytes_sent += frame.len() as u64;
        let lane = match kind {
            SendKind::Membership => super::Lane::Datagram,
            _ => super::Lane::Reliable,
        };
        self.sends.insert(ticket, (to.clone(), kind));
        self.out.push_back(Output::Send {
            ticket,
            to,
            frame,
            lane,
        });
    }
}

/// Membership's side of a space: takes membership frames and sends SWIM's packets. Its
/// liveness events (down, alive) stay queued in [`Membership`] until the space pumps it,
/// and a malformed packet's sender is recorded to be blocked then
/// ([`super::SpaceEvent::PeerMisbehaved`]): both touch the fetch queue, publish and gossip,
/// which a [`GossipStep`] may hold.
pub struct MembershipPart<'a> {
    pub(super) members: &'a mut Membership,
    pub(super) peers: &'a PeerStore,
    pub(super) left: bool,
    pub(super) outbox: Outbox<'a>,
    pub(super) misbehaving: &'a mut Vec<(Url, String)>,
}

impl MembershipPart<'_> {
    /// Takes `msg` from `from` if it is a membership frame (admitted senders only, as every
    /// module message: Kitsune2 §3.3) and queues SWIM's answers; any other message is given
    /// back, for [`Space::handle_message`] once the space is free.
    pub fn membership(
        &mut self,
        now: Timestamp,
        from: Url,
        msg: WireMessage,
    ) -> Option<(Url, WireMessage)> {
        let WireMessage::Membership { data, .. } = &msg else {
            return Some((from, msg));
        };
        if self.left || !self.peers.admits(now, &from) {
            self.outbox.stats.unadmitted += 1;
            return None;
        }
        let agents = self.peers.agents_at(now, &from);
        let peers = self.peers;
        let admits = |a: &AgentId| peers.get(now, a).is_some();
        match self.members.handle_data(now, &agents, data, admits) {
            Ok(()) => {}
            Err(MembershipError::Malformed(e)) => {
                self.outbox.stats.bad_membership += 1;
                self.misbehaving
                    .push((from, format!("bad membership packet: {e}")));
            }
            Err(MembershipError::Spoofed(_) | MembershipError::Ambiguous(_)) => {
                self.outbox.stats.bad_membership += 1;
            }
        }
        self.send_packets(now);
        None
    }

    /// Part of a message from `from` arrived
    /// ([`crate::api::transport::TransportEvent::Receiving`]): its agents, if admitted,
    /// count as heard from ([`Membership::heard_from`]).
    pub fn heard(&mut self, now: Timestamp, from: &Url) {
        if self.left || !self.peers.admits(now, from) {
            return;
        }
        let agents = self.peers.agents_at(now, from);
        self.members.heard_from(now, &agents);
    }

    /// Sends SWIM's queued packets, each to its member's URL from the peer store.
    pub(super) fn send_packets(&mut self, now: Timestamp) -> bool {
        let mut sent = false;
        while let Some((to, data)) = self.members.poll_packet() {
            sent = true;
            let url = self
                .peers
                .get(now, &to.agent)
                .and_then(|i: &AgentInfoSigned| i.url.clone());
            let Some(url) = url else {
                self.outbox.stats.membership_unroutable += 1;
                continue;
            };
            self.outbox
                .send(url, encode_membership(data), SendKind::Membership);
        }
        sent
    }

    /// The next frame to send ([`Output::Send`]): SWIM's answers. Other outputs stay queued
    /// for [`Space::poll_output`].
    pub fn poll_send(&mut self) -> Option<Output> {
        let out = &mut self.outbox.out;
        let at = out.iter().position(|o| matches!(o, Output::Send { .. }))?;
        out.remove(at)
    }
}

impl Space {
    /// The part of the space that sends frames.
    pub(super) fn outbox(&mut self) -> Outbox<'_> {
        Outbox {
            out: &mut self.out,
            sends: &mut self.sends,
            next_ticket: &mut self.next_ticket,
            stats: &mut self.stats,
        }
    }

    /// Membership's side of the space.
    pub(super) fn membership_part(&mut self) -> MembershipPart<'_> {
        self.split().0
    }

    /// The space split for a gossip step: membership's side, the gossip state and the model.
    fn split(&mut self) -> (MembershipPart<'_>, &mut Gossip, &Dht) {
        let Space {
            gossip,
            dht,
            peers,
            members,
            out,
            sends,
            next_ticket,
            stats,
            misbehaving,
            left,
            ..
        } = self;
        let membership = MembershipPart {
            members,
            peers,
            left: *left,
            outbox: Outbox {
                out,
                sends,
                next_ticket,
                stats,
            },
            misbehaving,
        };
        (membership, gossip, dht)
    }

    /// Starts handling the oldest waiting inbound gossip message (call while
    /// [`Space::gossip_ready`], after draining [`Space::poll_output`]): a [`GossipStep`] whose
    /// [`GossipStep::handling`] reads the model and `store`, while its
    /// [`GossipStep::membership`] keeps answering probes. One message per step, so a driver
    /// handles its other events between them. A sender blocked or gone since its message was
    /// queued is skipped.
    pub fn gossip_step<'a>(&'a mut self, store: &'a dyn OpStore, now: Timestamp) -> GossipStep<'a> {
        self.dht.update(now);
        let saturated = self.gossip_waits(now);
        self.gossip.set_saturated(saturated);
        let next = self.glue.inbox.pop_front();
        let next = next.filter(|(from, _)| !self.left && self.peers.admits(now, from));
        let (membership, gossip, dht) = self.split();
        let peers = membership.peers;
        let handling = async move {
            let Some((from, msg)) = next else {
                return GossipStepOutcome(Ok(()));
            };
            let agents = PeerInfos { peers, now };
            let ctx = Ctx {
                dht,
                store,
                agents: &agents,
            };
            GossipStepOutcome(gossip.handle(ctx, now, &from, msg).await)
        }
        .boxed_local();
        GossipStep {
            handling,
            membership,
        }
    }

    /// A [`GossipStep`] ended: a store failure is reported (refusals were reported as events
    /// by gossip), then gossip's and membership's outputs move on (liveness events held
    /// during the step, senders of malformed packets).
    pub fn end_gossip_step(&mut self, now: Timestamp, outcome: GossipStepOutcome) {
        if let Err(GossipError::Store(e)) = outcome.0 {
            self.store_failed(e);
        }
        self.pump(now);
    }

    /// Handles the oldest waiting inbound gossip message to its end ([`Space::gossip_step`]
    /// without answering membership meanwhile): for drivers whose store answers at once
    /// (simulations); drain [`Space::poll_output`] afterwards.
    pub async fn run_gossip(&mut self, store: &dyn OpStore, now: Timestamp) {
        let outcome = self.gossip_step(store, now).handling.await;
        self.end_gossip_step(now, outcome);
    }
}
