//! Membership: who in a space's active set is alive, suspected, down or gone — SWIM (Das et
//! al., DSN 2002, with suspicion and infection-style dissemination) run by foca, driven like
//! every sans-IO machine of `core/`: inputs in (`now` with each), [`Membership::poll_output`]
//! drained after each, [`Membership::poll_timeout`] says when to call
//! [`Membership::handle_timeout`].
//!
//! - **Identity** ([`MemberId`]): the agent id plus a `bump` (the joining time in µs). A
//!   reloaded tab joins with a higher bump and wins at once over its old identity
//!   (`Identity::win_addr_conflict`); a member wrongly declared down renews itself with
//!   `bump + 1`. The URL is not in the identity: the space looks it up in the verified peer
//!   store.
//! - **Admission**: the space hands in only packets from admitted URLs, and
//!   [`Membership::handle_data`] strips every update about an agent the `admits` predicate
//!   refuses (no verified agent info) before foca sees it, so only admitted peers become
//!   members.
//! - **Scope** (the active set): members are the peers this agent exchanges messages with
//!   ([`Membership::add_peer`]) plus at most [`MembershipConfig::max_members`] learned from
//!   others' updates; updates about further agents are dropped, so the cost per member does
//!   not grow with the space.
//! - **Timers**: foca's timers go into one queue ordered by deadline; timers found due
//!   together are handled in foca's `Timer` order (caio/foca#26: under lag, an indirect probe
//!   before the next probe).
//! - **Local health** (Lifeguard, Dadgar et al. 2017, "LHA-Probe"): a timer wake-up more
//!   than [`MembershipConfig::late_after`] late raises the local health score (up to
//!   [`MembershipConfig::max_health`]), one on time lowers it; our own probe, probe-timeout and
//!   suspicion timers are stretched by `score + 1`, so a throttled tab does not accuse healthy
//!   peers.
//! - **Dozing**: [`Membership::set_dozing`] spreads a hint (a foca custom broadcast,
//!   newest wins) to every member; a member suspecting a dozing member waits at least
//!   [`MembershipConfig::dozing_suspect_to_down_after`] before declaring it down. The hint is
//!   the agent's own claim but relayed by others: a lying member can slow the detection of
//!   another to that timeout, no more.
//! - **Busy**: local health seen from the other side. A tab whose own timers fire late is
//!   starved (a bulk sync on a loaded machine, long tasks): it answers probes late too, and
//!   its peers would declare it down although it is alive. So a timer later than a probe
//!   timeout ([`MembershipConfig::probe_rtt`]) also sets the dozing hint, until no timer has
//!   been that late for [`MembershipConfig::busy_linger`]: peers
//!   then give it the dozing timeout, as Lifeguard lets a slow member slow its own
//!   accusers. The price: a tab that crashes while busy is declared down after the dozing
//!   timeout, not the short one.
//! - **Buddy** (Lifeguard §IV-C): a member we start to suspect is told so at once by a
//!   direct Ping carrying the suspicion, so an alive one refutes within a round trip; this
//!   is what lets the suspicion timeout be short (two probe periods).
//! - **Heard from**: a suspected member we keep receiving anything from
//!   ([`Membership::heard_from`]) is declared down only once it has been silent for the
//!   suspicion timeout, and is told of the suspicion again meanwhile (a congested
//!   connection loses the datagrams SWIM counts on while its data arrives). Its
//!   [`MemberEvent::Suspect`] is held back while we heard from it within a probe period
//!   (it is reported if it falls silent while still suspected), so apps do not see a peer
//!   that is sending to them flicker suspect-then-alive.
//! - **Leaving**: [`Membership::leave`] is foca's `leave_cluster`; the Down it spreads is
//!   marked "left" ([`codec`]), so peers report [`MemberEvent::Left`], not a crash.
//!
//! Events ([`MemberEvent`]) come from comparing each member's state after every input with
//! the state before, so every transition foca makes is reported exactly once.

pub mod codec;

#[cfg(test)]
mod sim_tests;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::num::{NonZeroU8, NonZeroUsize};
use std::rc::Rc;
use std::time::Duration;

use bytes::BufMut;
use bytes::Bytes;
use foca::{Config, Foca, Member, Message, OwnedNotification, PeriodicParams, State};
use rand::SeedableRng;
use rand::rngs::SmallRng;

use crate::core::config::{ConfigError, at_least_one, positive};
use crate::hash::{HashMap, HashSet};
use crate::model::id::AgentId;
use crate::model::time::Timestamp;
use crate::sort;

pub use codec::{CodecError, DozeHandler, DozeKey, WireCodec};

/// A member's identity: its agent and a bump that orders the agent's successive identities
/// (higher wins). foca keys members by the agent ([`foca::Identity::addr`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberId {
    /// The agent.
    pub agent: AgentId,
    /// Orders identities of one agent: the join time in µs, plus one per renewal.
    pub bump: u64,
}

impl foca::Identity for MemberId {
    type Addr = AgentId;

    /// Declared down while alive (or back from a doze): come back as `bump + 1`.
    fn renew(&self) -> Option<Self> {
        Some(MemberId {
            agent: self.agent.clone(),
            bump: self.bump.wrapping_add(1),
        })
    }

    fn addr(&self) -> AgentId {
        self.agent.clone()
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.bump > adversary.bump
    }
}

/// How a member looks to us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Liveness {
    /// Answering probes.
    Alive,
    /// A probe failed; it has until the suspicion timeout to refute.
    Suspect,
    /// Declared down (failed to refute, or a peer said so).
    Down,
    /// Announced its own leave.
    Left,
}

/// A change of a member's [`Liveness`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberEvent {
    /// The agent became a member or refuted a suspicion, or a newer identity of a down agent
    /// appeared.
    Alive(AgentId),
    /// The agent is suspected and we heard nothing from it for a probe period (a suspicion
    /// of a member we keep hearing from is held back, and so is its refutation's `Alive`).
    Suspect(AgentId),
    /// The agent was declared down.
    Down(AgentId),
    /// The agent left.
    Left(AgentId),
}

impl MemberEvent {
    /// The agent the event is about.
    pub fn agent(&self) -> &AgentId {
        match self {
            MemberEvent::Alive(a)
            | MemberEvent::Suspect(a)
            | MemberEvent::Down(a)
            | MemberEvent::Left(a) => a,
        }
    }
}

/// What [`Membership`] asks of its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipOutput {
    /// Send `data` (a membership module payload) to `to`'s URL. Loss is fine: SWIM expects
    /// datagrams.
    Send {
        /// The member.
        to: MemberId,
        /// The payload: one flags byte, then a foca packet ([`codec`]'s wire form).
        data: Bytes,
    },
    /// A member changed state.
    Event(MemberEvent),
}

/// Why [`Membership::handle_data`] refused a packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    /// The packet does not decode: the sender broke the protocol.
    #[error("malformed membership packet: {0}")]
    Malformed(String),
    /// The packet claims to come from an agent that is not at the sender's URL.
    #[error("membership packet from agent {0} not at the sender's URL")]
    Spoofed(AgentId),
    /// The packet leaves its source agent out ([`codec::FLAG_IMPLICIT_SRC`]) but the
    /// sender's URL hosts not exactly one agent (count given): who sent it is unknown.
    #[error("membership packet without a source agent from a URL with {0} agents")]
    Ambiguous(usize),
}

/// Settings of [`Membership`]; see `docs/design.md` ("Membership") for why these values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipConfig {
    /// SWIM protocol period: one probe per period. Default 800 ms (SWIM's expected first
    /// detection is ≈ 1.58 periods, its tail a few periods: see docs/design.md).
    pub probe_period: Duration,
    /// Time for a direct ack before indirect probes go out. Default 400 ms, half the period
    /// as in memberlist's LAN config (WebRTC RTTs are tens of ms; relayed paths a few
    /// hundred).
    pub probe_rtt: Duration,
    /// Members asked to probe indirectly (SWIM k). Default 5.
    pub num_indirect_probes: usize,
    /// Times each update is piggybacked. Default 10.
    pub max_transmissions: u8,
    /// Suspicion timeout. Default 1.6 s, two probe periods (with the buddy message an alive
    /// suspect refutes within one round trip; see docs/design.md, "Membership").
    pub suspect_to_down_after: Duration,
    /// Suspicion timeout for a member that said it is dozing (hidden tab). Default 30 s.
    pub dozing_suspect_to_down_after: Duration,
    /// Down members are forgotten after this. Default 5 min.
    pub remove_down_after: Duration,
    /// Gossip queued updates this often to 3 members. Default 100 ms (memberlist's
    /// `DefaultLocalConfig`; only sent while updates are queued).
    pub gossip_every: Duration,
    /// Announce to one down member this often (heals partitions). Default 10 s.
    pub announce_to_down_every: Duration,
    /// Members learned from others' updates beyond the peers we talk to. Default 32.
    pub max_members: usize,
    /// Largest packet. Default 1 200 bytes.
    pub max_packet_bytes: usize,
    /// A wake-up for a timer later than this counts as "late" for local health. Default
    /// 200 ms.
    pub late_after: Duration,
    /// Highest local health score (timeouts stretch up to `max_health + 1` times).
    /// Default 4.
    pub max_health: u32,
    /// How long after its last timer that fired more than `probe_rtt` late a tab keeps
    /// telling members it is dozing (the busy hint; see the module docs). Default 10 s; zero
    /// turns the hint off.
    pub busy_linger: Duration,
}

impl Default for MembershipConfig {
    fn default() -> Self {
        MembershipConfig {
            probe_period: Duration::from_millis(800),
            probe_rtt: Duration::from_millis(400),
            num_indirect_probes: 5,
            max_transmissions: 10,
            suspect_to_down_after: Duration::from_millis(1600),
            dozing_suspect_to_down_after: Duration::from_secs(30),
            remove_down_after: Duration::from_secs(300),
            gossip_every: Duration::from_millis(100),
            announce_to_down_every: Duration::from_secs(10),
            max_members: 32,
            max_packet_bytes: 1200,
            late_after: Duration::from_millis(200),
            max_health: 4,
            busy_linger: Duration::from_secs(10),
        }
    }
}

impl MembershipConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first bad field (`membership.` prefix): a zero duration or
    /// count, a `probe_rtt` not below `probe_period`, or packets under 256 bytes.
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive("membership.probe_period", self.probe_period)?;
        positive("membership.probe_rtt", self.probe_rtt)?;
        if self.probe_rtt >= self.probe_period {
            return Err(ConfigError {
                field: "membership.probe_rtt",
                rule: "must be below probe_period",
            });
        }
        at_least_one(
            "membership.num_indirect_probes",
            self.num_indirect_probes as u64,
        )?;
        at_least_one(
            "membership.max_transmissions",
            u64::from(self.max_transmissions),
        )?;
        positive(
            "membership.suspect_to_down_after",
            self.suspect_to_down_after,
        )?;
        positive(
            "membership.dozing_suspect_to_down_after",
            self.dozing_suspect_to_down_after,
        )?;
        positive("membership.remove_down_after", self.remove_down_after)?;
        positive("membership.gossip_every", self.gossip_every)?;
        positive(
            "membership.announce_to_down_every",
            self.announce_to_down_every,
        )?;
        at_least_one("membership.max_members", self.max_members as u64)?;
        if self.max_packet_bytes < 256 {
            return Err(ConfigError {
                field: "membership.max_packet_bytes",
                rule: "must be at least 256",
            });
        }
        positive("membership.late_after", self.late_after)
    }

    fn foca(&self) -> Config {
        // validate() ran: every NonZero below holds; 1 is a safe fallback regardless.
        let one = NonZeroUsize::MIN;
        Config {
            probe_period: self.probe_period,
            probe_rtt: self.probe_rtt,
            num_indirect_probes: NonZeroUsize::new(self.num_indirect_probes).unwrap_or(one),
            max_transmissions: NonZeroU8::new(self.max_transmissions).unwrap_or(NonZeroU8::MIN),
            suspect_to_down_after: self.suspect_to_down_after,
            remove_down_after: Some(self.remove_down_after),
            max_packet_size: NonZeroUsize::new(self.max_packet_bytes).unwrap_or(one),
            notify_down_members: true,
            periodic_announce: None,
            periodic_announce_to_down_members: Some(PeriodicParams {
                frequency: self.announce_to_down_every,
                num_members: one,
            }),
            periodic_gossip: Some(PeriodicParams {
                frequency: self.gossip_every,
                num_members: NonZeroUsize::new(3).unwrap_or(one),
            }),
        }
    }
}

/// Counters of a [`Membership`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MembershipStats {
    /// Packets sent.
    pub packets_sent: u64,
    /// Bytes of those packets (membership payloads, without the frame envelope).
    pub bytes_sent: u64,
    /// Packets handed in.
    pub packets_received: u64,
    /// Updates dropped: unadmitted agent, or beyond `max_members`.
    pub updates_dropped: u64,
    /// foca errors on valid input (late or stray timers, messages for an old identity).
    pub foca_errors: u64,
    /// Timers that fired more than `late_after` late.
    pub late_timers: u64,
}

type Timer = foca::Timer<MemberId>;

/// foca's [`foca::Runtime`]: collects what foca asks for until [`Membership`] moves it.
#[derive(Default)]
struct Effects {
    sends: Vec<(MemberId, Vec<u8>)>,
    timers: Vec<(Timer, Duration)>,
    notes: Vec<OwnedNotification<MemberId>>,
}

impl foca::Runtime<MemberId> for Effects {
    fn notify(&mut self, n: foca::Notification<'_, MemberId>) {
        self.notes.push(n.to_owned());
    }

    fn send_to(&mut self, to: MemberId, data: &[u8]) {
        self.sends.push((to, data.to_vec()));
    }

    fn submit_after(&mut self, event: Timer, after: Duration) {
        self.timers.push((event, after));
    }
}

/// SWIM membership of one local agent (see the [module docs](self)).
pub struct Membership {
    cfg: MembershipConfig,
    foca: Foca<MemberId, WireCodec, SmallRng, DozeHandler>,
    codec: WireCodec,
    shared: Rc<RefCell<codec::Shared>>,
    me: MemberId,
    fx: Effects,
    /// foca's timers by `(deadline, seq)`; `seq` (one per timer queued) makes every key unique,
    /// so timers of one deadline come out in the order they were set. A heap, not a B-tree
    /// map: the queue is only pushed and popped at its earliest, and the B-tree of this type
    /// was ~10 KB of code (docs/design.md, "Size").
    timers: BinaryHeap<Reverse<(Timestamp, u64, Timer)>>,
    timer_seq: u64,
    states: HashMap<AgentId, Liveness>,
    /// When each member last sent us anything: a membership packet, or any message the space
    /// took from its connection ([`Membership::heard_from`]).
    heard: HashMap<AgentId, Timestamp>,
    /// Suspects whose [`MemberEvent::Suspect`] is held back: heard from within a probe period
    /// when foca suspected them ([`Self::report_changes`]); they look alive to the app until
    /// they refute (no event) or fall silent ([`Self::report_silent_suspects`]).
    unreported_suspects: HashSet<AgentId>,
    /// The dozing hint members last heard from us (hidden or busy).
    dozing: bool,
    /// The app said the tab is hidden ([`Membership::set_dozing`]).
    hidden: bool,
    /// When a timer of ours last fired more than `probe_rtt` late (the busy hint lasts
    /// `busy_linger` from it).
    last_late: Option<Timestamp>,
    doze_seq: u64,
    left: bool,
    health: u32,
    out: VecDeque<MembershipOutput>,
    stats: MembershipStats,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership")
            .field("me", &self.me)
            .field("members", &self.states.len())
            .field("health", &self.health)
            .finish()
    }
}

impl Membership {
    /// A membership for `agent` joining at `now` (its bump), with randomness from `seed` (use
    /// random bytes, e.g. `getrandom`; fixed in tests).
    ///
    /// # Errors
    /// [`ConfigError`] for an invalid config ([`MembershipConfig::validate`]).
    pub fn new(
        cfg: MembershipConfig,
        agent: AgentId,
        now: Timestamp,
        seed: u64,
    ) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let me = MemberId {
            agent,
            bump: now.0.max(0) as u64,
        };
        let shared = Rc::new(RefCell::new(codec::Shared {
            cap: cfg.max_members.saturating_mul(4),
            me: me.agent.clone(),
            ..codec::Shared::default()
        }));
        let codec = WireCodec::new(shared.clone());
        let foca = Foca::with_custom_broadcast(
            me.clone(),
            cfg.foca(),
            SmallRng::seed_from_u64(seed),
            codec.clone(),
            DozeHandler::new(shared.clone()),
        );
        Ok(Membership {
            cfg,
            foca,
            codec,
            shared,
            me,
            fx: Effects::default(),
            timers: BinaryHeap::new(),
            timer_seq: 0,
            heard: HashMap::default(),
            unreported_suspects: HashSet::default(),
            states: HashMap::default(),
            dozing: false,
            hidden: false,
            last_late: None,
            doze_seq: 0,
            left: false,
            health: 0,
            out: VecDeque::new(),
            stats: MembershipStats::default(),
        })
    }

    /// Our current identity.
    pub fn identity(&self) -> &MemberId {
        &self.me
    }

    /// The config.
    pub fn config(&self) -> &MembershipConfig {
        &self.cfg
    }

    /// Counters.
    pub fn stats(&self) -> MembershipStats {
        self.stats
    }

    /// The local health score (0 = healthy; timeouts are stretched `score + 1` times).
    pub fn local_health(&self) -> u32 {
        self.health
    }

    /// How `agent` looks to us, if it is or was a member: as the events said (a suspect
    /// whose event is held back is alive).
    pub fn liveness(&self, agent: &AgentId) -> Option<Liveness> {
        self.states.get(agent).map(|l| self.reported(agent, *l))
    }

    /// Every member's liveness (down and left ones until forgotten), as [`Self::liveness`].
    pub fn members(&self) -> impl Iterator<Item = (&AgentId, Liveness)> {
        self.states.iter().map(|(a, l)| (a, self.reported(a, *l)))
    }

    /// foca's own view of `agent`, with no suspicion held back: for tests that check
    /// suspicions are refuted, not only unreported.
    #[cfg(test)]
    pub(crate) fn swim_liveness(&self, agent: &AgentId) -> Option<Liveness> {
        self.states.get(agent).copied()
    }

    fn reported(&self, agent: &AgentId, l: Liveness) -> Liveness {
        if self.unreported_suspects.contains(agent) {
            Liveness::Alive
        } else {
            l
        }
    }

    /// Active members (alive or suspect).
    pub fn active_count(&self) -> usize {
        self.foca.num_members()
    }

    /// Whether fewer than [`MembershipConfig::max_members`] agents are known: room for a
    /// peer we merely heard of (bootstrap), as opposed to one we exchange messages with.
    pub fn has_room(&self) -> bool {
        self.states.len() < self.cfg.max_members
    }

    /// The next output. Drain after every input.
    pub fn poll_output(&mut self) -> Option<MembershipOutput> {
        self.out.pop_front()
    }

    /// The next packet to send ([`MembershipOutput::Send`]: member, payload), leaving
    /// liveness events queued in their order: a space answers probes while the parts that
    /// act on liveness are busy (`Space::gossip_step`).
    pub fn poll_packet(&mut self) -> Option<(MemberId, Bytes)> {
        let at = self
            .out
            .iter()
            .position(|o| matches!(o, MembershipOutput::Send { .. }))?;
        match self.out.remove(at)? {
            MembershipOutput::Send { to, data } => Some((to, data)),
            MembershipOutput::Event(_) => None,
        }
    }

    /// The next liveness event, leaving packets queued.
    pub fn poll_event(&mut self) -> Option<MemberEvent> {
        let at = self
            .out
            .iter()
            .position(|o| matches!(o, MembershipOutput::Event(_)))?;
        match self.out.remove(at)? {
            MembershipOutput::Event(e) => Some(e),
            MembershipOutput::Send { .. } => None,
        }
    }

    /// The earliest timer deadline.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.timers.peek().map(|Reverse((at, ..))| *at)
    }

    /// `agent` (admitted, connected to or talked with) joins the active set: we announce
    /// ourselves to it and learn its members from its reply. Nothing happens for an agent
    /// that is or was a member, or after [`leave`](Self::leave).
    pub fn add_peer(&mut self, now: Timestamp, agent: &AgentId) {
        if self.left || *agent == self.me.agent {
            return;
        }
        // A known member, even a down one: foca handles its return (TurnUndead, renewal,
        // announces to down members); announcing on every message would flood.
        if self.states.contains_key(agent) {
            return;
        }
        // The bump is unknown until it answers; 0 loses to any real identity, so its Feed's
        // entry about itself replaces this one.
        let dst = MemberId {
            agent: agent.clone(),
            bump: 0,
        };
        let r = self.foca.announce(dst, &mut self.fx);
        self.settle(now, r);
    }

    /// `agents` sent us something at `now` (the space calls this for every message it takes
    /// from a connection; membership packets count by themselves). A suspected member we
    /// keep hearing from is not declared down until it has been silent for the suspicion
    /// timeout: its data is first-hand proof that it runs. SWIM only counts acks, which
    /// travel on the unreliable datagram channel; a bulk transfer that congests the
    /// connection loses them while its data keeps arriving, and a two-tab space then
    /// declared both tabs down (an 8 MB sync into a slow store, see docs/design.md). Only
    /// members are recorded, so the map stays within the active set.
    pub fn heard_from(&mut self, now: Timestamp, agents: &[AgentId]) {
        for a in agents {
            // Called for every message: update in place, clone the id only the first time.
            if let Some(at) = self.heard.get_mut(a) {
                *at = now;
            } else if self.states.contains_key(a) {
                self.heard.insert(a.clone(), now);
            }
        }
    }

    /// A membership payload from a peer whose URL is admitted and hosts `sender_agents`.
    /// Updates about agents `admits` refuses, and about new agents beyond
    /// [`MembershipConfig::max_members`], are dropped before foca sees them.
    ///
    /// # Errors
    /// [`MembershipError::Malformed`] for bytes that do not decode (protocol violation);
    /// [`MembershipError::Spoofed`] if the packet's source agent is not among
    /// `sender_agents`; [`MembershipError::Ambiguous`] if it leaves its source out and
    /// `sender_agents` is not exactly one agent. foca's own refusals of well-formed packets
    /// (e.g. one for an old identity of ours) are counted in [`MembershipStats::foca_errors`],
    /// not errors.
    pub fn handle_data(
        &mut self,
        now: Timestamp,
        sender_agents: &[AgentId],
        data: &[u8],
        admits: impl Fn(&AgentId) -> bool,
    ) -> Result<(), MembershipError> {
        self.stats.packets_received += 1;
        let packet = match codec::from_wire(data, sender_agents) {
            Ok(p) => p,
            Err(codec::WireFormError::Ambiguous(n)) => return Err(MembershipError::Ambiguous(n)),
            Err(e) => return Err(MembershipError::Malformed(e.to_string())),
        };
        let mut room = self.cfg.max_members.saturating_sub(self.states.len());
        let me = self.me.agent.clone();
        let states = &self.states;
        let filtered = codec::filter_packet(&mut self.codec, &packet, |m| {
            let a = &m.id().agent;
            if *a == me || states.contains_key(a) {
                return true;
            }
            if room > 0 && admits(a) {
                room -= 1;
                return true;
            }
            false
        })
        .map_err(|e| MembershipError::Malformed(e.to_string()))?;
        if !sender_agents.contains(&filtered.src.agent) {
            return Err(MembershipError::Spoofed(filtered.src.agent));
        }
        self.stats.updates_dropped += filtered.dropped as u64;
        self.heard_from(now, std::slice::from_ref(&filtered.src.agent));
        let r = self.foca.handle_data(&filtered.packet, &mut self.fx);
        if let Err(foca::Error::CustomBroadcast(e)) = &r {
            return Err(MembershipError::Malformed(e.to_string()));
        }
        self.settle(now, r);
        Ok(())
    }

    /// Runs the timers due at `now`, in foca's order, and updates local health from how late
    /// they are.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let mut due = Vec::new();
        while self
            .timers
            .peek()
            .is_some_and(|Reverse((at, ..))| *at <= now)
        {
            if let Some(Reverse((at, _, timer))) = self.timers.pop() {
                due.push((at, timer));
            }
        }
        // The earliest due timer is the one the driver woke up for: its delay is how late
        // our timers run.
        if let Some((first, _)) = due.first() {
            self.observe_lateness(now, now.micros_since(*first));
        }
        self.update_doze(now);
        // Same-kind timers stay in deadline order; equal (timer, deadline) pairs are
        // indistinguishable, so an unstable sort (smaller code) is enough.
        sort::sort_by(&mut due, |a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
        for (_, timer) in due {
            if let Some(later) = self.still_heard(now, &timer) {
                self.tell_again(&timer);
                self.queue_timer(later, timer);
                continue;
            }
            let r = self.foca.handle_timer(timer, &mut self.fx);
            self.settle(now, r);
        }
        self.report_silent_suspects(now);
    }

    /// Whether `agent` sent us anything within the last probe period.
    fn heard_lately(&self, now: Timestamp, agent: &AgentId) -> bool {
        self.heard
            .get(agent)
            .is_some_and(|at| at.plus(self.cfg.probe_period) > now)
    }

    /// Reports the held-back suspicions of members that fell silent (nothing for a probe
    /// period): run after every batch of timers, so within a probe period of the silence.
    fn report_silent_suspects(&mut self, now: Timestamp) {
        let silent: Vec<AgentId> = self
            .unreported_suspects
            .iter()
            .filter(|a| !self.heard_lately(now, a))
            .cloned()
            .collect();
        for a in silent {
            self.unreported_suspects.remove(&a);
            self.out
                .push_back(MembershipOutput::Event(MemberEvent::Suspect(a)));
        }
    }

    /// For foca's suspect-to-down timer of a member we heard from ([`Self::heard_from`])
    /// less than its suspicion timeout ago: when that timeout after the last hearing ends.
    fn still_heard(&self, now: Timestamp, timer: &Timer) -> Option<Timestamp> {
        let Timer::ChangeSuspectToDown { member_id, .. } = timer else {
            return None;
        };
        let last = self.heard.get(&member_id.agent)?;
        let until = last.plus(self.stretch(timer, self.cfg.suspect_to_down_after));
        (until > now).then_some(until)
    }

    /// A suspicion whose down we put off: the suspect is told again (as when it started,
    /// [`Self::tell_suspects`]), since the first telling or the refutation may have been lost
    /// in the congestion that made us suspect it; without it the suspicion could outlast
    /// the congestion for good.
    fn tell_again(&mut self, timer: &Timer) {
        if let Timer::ChangeSuspectToDown {
            member_id,
            incarnation,
            ..
        } = timer
        {
            let m = Member::new(member_id.clone(), *incarnation, State::Suspect);
            self.tell_suspects(vec![m]);
        }
    }

    fn queue_timer(&mut self, at: Timestamp, timer: Timer) {
        self.timer_seq += 1;
        self.timers.push(Reverse((at, self.timer_seq, timer)));
    }

    /// Tells members that this tab is (or no longer is) hidden: they wait
    /// [`MembershipConfig::dozing_suspect_to_down_after`] before declaring us down. The hint
    /// is a foca custom broadcast (sequence = `now`), piggybacked like membership updates and
    /// sent to a few members at once. A busy tab (see the module docs) keeps the hint on
    /// after it is shown again until its timers have been on time for
    /// [`MembershipConfig::busy_linger`].
    pub fn set_dozing(&mut self, now: Timestamp, hidden: bool) {
        self.hidden = hidden;
        self.update_doze(now);
    }

    /// Whether our timers ran late within [`MembershipConfig::busy_linger`].
    fn busy(&self, now: Timestamp) -> bool {
        self.last_late
            .is_some_and(|t| now < t.plus(self.cfg.busy_linger))
    }

    /// Spreads the dozing hint if hidden-or-busy changed since members last heard it.
    fn update_doze(&mut self, now: Timestamp) {
        let dozing = self.hidden || self.busy(now);
        if self.dozing == dozing || self.left {
            return;
        }
        self.dozing = dozing;
        self.spread_doze(now);
    }

    /// Adds our current dozing hint, with a new sequence, to foca's broadcasts and sends it.
    fn spread_doze(&mut self, now: Timestamp) {
        let dozing = self.dozing;
        let seq = (now.0.max(0) as u64).max(self.doze_seq + 1);
        self.doze_seq = seq;
        let item = codec::encode_doze(&self.me.agent, seq, dozing);
        if self.foca.add_broadcast(&item).is_err() {
            self.stats.foca_errors += 1;
        }
        let r = self.foca.broadcast(&mut self.fx);
        self.settle(now, r);
    }

    /// When our next probe is due (tests of local health).
    #[cfg(test)]
    pub(crate) fn next_probe(&self) -> Option<Timestamp> {
        self.timers
            .iter()
            .filter(|Reverse((.., t))| matches!(t, Timer::ProbeRandomMember(_)))
            .map(|Reverse((at, ..))| *at)
            .min()
    }

    /// Whether we told members we are dozing.
    pub fn is_dozing(&self) -> bool {
        self.dozing
    }

    /// Leaves (foca's `leave_cluster`): our Down, marked "left", goes to members at once and
    /// rides on later gossip; we stop probing.
    pub fn leave(&mut self, now: Timestamp) {
        if self.left {
            return;
        }
        self.left = true;
        self.shared.borrow_mut().left.insert(self.me.clone());
        let r = self.foca.leave_cluster(&mut self.fx);
        self.settle(now, r);
    }

    /// Comes back after [`leave`](Self::leave) (e.g. a tab restored from the back/forward
    /// cache) as a newer identity (`bump + 1`), announced to the members we knew.
    pub fn rejoin(&mut self, now: Timestamp) {
        let next = MemberId {
            agent: self.me.agent.clone(),
            bump: self.me.bump.wrapping_add(1).max(now.0.max(0) as u64),
        };
        let known: Vec<AgentId> = self.states.keys().cloned().collect();
        let r = self.foca.change_identity(next.clone(), &mut self.fx);
        self.me = next;
        self.left = false;
        self.settle(now, r);
        for a in known {
            let dst = MemberId { agent: a, bump: 0 };
            let r = self.foca.announce(dst, &mut self.fx);
            self.settle(now, r);
        }
    }

    /// Our own link was down for a while (e.g. the signal relay): members we suspected or
    /// declared down meanwhile may only have been cut off by our outage. A suspect is told
    /// of the suspicion again (the buddy ping sent when it began was lost in the outage), so
    /// an alive one refutes before the suspicion times out. A down one is sent an announce
    /// at once instead of waiting for [`MembershipConfig::announce_to_down_every`]: one
    /// that is alive answers, learns it was declared down (foca's `TurnUndead`) and comes
    /// back with a renewed identity; one that still does not answer stays down. If members
    /// declared *us* down, their answer tells us the same and we renew. SWIM alone decides;
    /// nothing is cleared here. Nothing happens after [`leave`](Self::leave).
    pub fn reconnected(&mut self, now: Timestamp) {
        if self.left {
            return;
        }
        let suspects: Vec<Member<MemberId>> = self
            .foca
            .iter_membership_state()
            .filter(|m| m.state() == State::Suspect)
            .cloned()
            .collect();
        self.tell_suspects(suspects);
        self.announce_to_down(now);
    }

    /// Sends an announce to every member we hold down, addressed by agent (any identity of
    /// it accepts it: foca's `accept_payload`). One that is alive answers: it learns it was
    /// declared down and renews, or, if it holds us down, tells us so and we renew.
    fn announce_to_down(&mut self, now: Timestamp) {
        let down: Vec<AgentId> = self
            .states
            .iter()
            .filter(|(_, l)| **l == Liveness::Down)
            .map(|(a, _)| a.clone())
            .collect();
        for agent in down {
            let r = self
                .foca
                .announce(MemberId { agent, bump: 0 }, &mut self.fx);
            self.settle(now, r);
        }
    }

    /// `agent` is gone for good (agent info left, expired or blocked; the space reported
    /// that): it is declared down here without telling others or emitting an event, and
    /// forgotten later.
    pub fn forget(&mut self, now: Timestamp, agent: &AgentId) {
        let Some(m) = self
            .foca
            .iter_membership_state()
            .find(|m| &m.id().agent == agent)
            .map(|m| m.id().clone())
        else {
            return;
        };
        // Recorded as left already, so the change below reports nothing.
        self.shared.borrow_mut().left.insert(m.clone());
        self.states.insert(agent.clone(), Liveness::Left);
        self.unreported_suspects.remove(agent);
        let r = self
            .foca
            .apply_many(std::iter::once(Member::down(m)), false, &mut self.fx);
        self.settle(now, r);
    }

    // ------------------------------------------------------------------ internals

    fn observe_lateness(&mut self, now: Timestamp, late_us: i64) {
        // Later than a probe timeout: probes to us are answered as late, so peers would
        // suspect us. (Smaller lateness, common on a loaded machine, only stretches ours.)
        if late_us > crate::model::time::micros(self.cfg.probe_rtt) {
            self.last_late = Some(now);
        }
        if late_us > crate::model::time::micros(self.cfg.late_after) {
            self.stats.late_timers += 1;
            self.health = (self.health + 1).min(self.cfg.max_health);
        } else {
            self.health = self.health.saturating_sub(1);
        }
    }

    /// Moves foca's effects out: sends to the output, timers (stretched) to the queue,
    /// notifications handled; then reports state changes.
    fn settle(&mut self, now: Timestamp, r: Result<(), foca::Error>) {
        if r.is_err() {
            self.stats.foca_errors += 1;
        }
        for (to, packet) in std::mem::take(&mut self.fx.sends) {
            let data = codec::to_wire(&self.me.agent, &packet);
            self.stats.packets_sent += 1;
            self.stats.bytes_sent += data.len() as u64;
            self.out.push_back(MembershipOutput::Send {
                to,
                data: data.into(),
            });
        }
        for (timer, after) in std::mem::take(&mut self.fx.timers) {
            let after = self.stretch(&timer, after);
            self.queue_timer(now.plus(after), timer);
        }
        let mut renewed = false;
        for note in std::mem::take(&mut self.fx.notes) {
            if let OwnedNotification::Rejoin(id) = note {
                // Declared down while alive: foca renewed our identity.
                self.me = id;
                renewed = true;
            }
        }
        // Members drop what a member they hold down sends, our dozing hint too (a hint
        // frozen in a paused tab goes out only after the down): said again under the new
        // identity, or a hidden tab is declared down at every pause.
        if renewed && self.dozing && !self.left {
            self.spread_doze(now);
        }
        let suspects = self.report_changes(now);
        self.tell_suspects(suspects);
        // foca's renewal gossips only to active members and stops every timer until one
        // answers. Two members that hold each other down (both cut off, e.g. by a restart of
        // the signal server) and learn it at once both renew, and each one's news, addressed
        // to the other's old identity, is dropped (`accept_payload`): neither would ever
        // talk again. Our new identity's announce to them is accepted (it names no bump).
        if renewed && !self.left {
            self.announce_to_down(now);
        }
    }

    /// Lifeguard: our own probe and suspicion timeouts grow with the local health score; a
    /// suspected member that said it is dozing gets at least the dozing timeout.
    fn stretch(&self, timer: &Timer, after: Duration) -> Duration {
        let factor = self.health + 1;
        match timer {
            Timer::ProbeRandomMember(_) | Timer::SendIndirectProbe { .. } => after * factor,
            Timer::ChangeSuspectToDown { member_id, .. } => {
                let after = after * factor;
                let dozing = self
                    .shared
                    .borrow()
                    .dozing
                    .get(&member_id.agent)
                    .map(|d| d.1);
                if dozing == Some(true) {
                    after.max(self.cfg.dozing_suspect_to_down_after)
                } else {
                    after
                }
            }
            _ => after,
        }
    }

    /// Reports every member whose state changed since the last call; returns the members
    /// that just became suspect (with the suspected incarnation) for [`Self::tell_suspects`].
    /// A suspect heard from lately is not reported yet ([`Self::unreported_suspects`]), nor
    /// is its refutation.
    fn report_changes(&mut self, now_at: Timestamp) -> Vec<Member<MemberId>> {
        let left = self.shared.borrow();
        let mut seen = 0;
        let mut suspects = Vec::new();
        for m in self.foca.iter_membership_state() {
            seen += 1;
            let agent = &m.id().agent;
            let now = match m.state() {
                State::Alive => Liveness::Alive,
                State::Suspect => Liveness::Suspect,
                State::Down if left.left.contains(m.id()) => Liveness::Left,
                State::Down => Liveness::Down,
            };
            let before = self.states.insert(agent.clone(), now);
            if before == Some(now) {
                continue;
            }
            let e = match now {
                Liveness::Alive => MemberEvent::Alive(agent.clone()),
                Liveness::Suspect => MemberEvent::Suspect(agent.clone()),
                Liveness::Down => MemberEvent::Down(agent.clone()),
                Liveness::Left => MemberEvent::Left(agent.clone()),
            };
            let held_back = self.unreported_suspects.remove(agent);
            if now == Liveness::Suspect && self.heard_lately(now_at, agent) {
                self.unreported_suspects.insert(agent.clone());
            } else if held_back && now == Liveness::Alive {
                // Refuted before it was reported: the app saw it alive all along.
            } else if before.is_some() || matches!(now, Liveness::Alive | Liveness::Suspect) {
                // A member first seen down was never reported alive: nothing to report.
                self.out.push_back(MembershipOutput::Event(e));
            }
            if now == Liveness::Suspect {
                suspects.push(m.clone());
            }
        }
        if seen != self.states.len() {
            // foca forgot down members (RemoveDown): forget them too.
            // Agent ids as byte slices: the module's one id-set type.
            let current: HashSet<&[u8]> = self
                .foca
                .iter_membership_state()
                .map(|m| m.id().agent.as_bytes())
                .collect();
            self.states.retain(|a, _| current.contains(a.as_bytes()));
            self.heard.retain(|a, _| current.contains(a.as_bytes()));
            self.unreported_suspects
                .retain(|a| current.contains(a.as_bytes()));
            drop(left);
            let mut s = self.shared.borrow_mut();
            s.left
                .retain(|id| current.contains(id.agent.as_bytes()) || *id == self.me);
            s.dozing.retain(|a, _| current.contains(a.as_bytes()));
        }
        suspects
    }

    /// Lifeguard's "buddy system" (Dadgar et al. 2017, §IV-C): a member we just started to
    /// suspect is told so directly, at once, instead of waiting for gossip to reach it by
    /// chance. The message is a SWIM `Ping` carrying the suspicion as its only update; an
    /// alive member refutes (incarnation + 1) before it answers, so its `Ack` header brings
    /// the refutation back within one round trip (the ack itself matches no probe of ours
    /// and foca ignores it). A crashed member just loses the packet. The header's
    /// incarnation 0 never overrides what members know of us.
    fn tell_suspects(&mut self, suspects: Vec<Member<MemberId>>) {
        use foca::Codec;
        for m in suspects {
            let header = foca::Header {
                src: self.me.clone(),
                src_incarnation: 0,
                dst: m.id().clone(),
                message: Message::Ping(0),
            };
            let mut buf = Vec::new();
            let encoded = self.codec.encode_header(&header, &mut buf).and_then(|()| {
                buf.put_u16(1);
                self.codec.encode_member(&m, &mut buf)
            });
            if encoded.is_err() {
                self.stats.foca_errors += 1;
                continue;
            }
            let buf = codec::to_wire(&self.me.agent, &buf);
            self.stats.packets_sent += 1;
            self.stats.bytes_sent += buf.len() as u64;
            self.out.push_back(MembershipOutput::Send {
                to: m.id().clone(),
                data: buf.into(),
            });
        }
    }
}
