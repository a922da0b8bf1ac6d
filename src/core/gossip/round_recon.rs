//! fennec's reconciliation step in a round ([`super::reconcile`]), negotiated by
//! `fennec_reconcile` in Initiate and Accept; without it a round is plain Kitsune2.
//!
//! ```text
//! I: Initiate{fennec_reconcile}          A: Accept{fennec_reconcile, Minimal snapshot}
//! I: top hashes differ (disc, rings or both) or cannot compare ->
//!    DiscSectorsDiff{accept_response, no snapshot, sketch symbols 0..m}
//! A: decodes -> fetches I's extra ids, Hashes{A's extra ids}                       done
//!    too few symbols -> DiscSectorDetailsDiff{request up to 4m}
//!    -> I: DiscSectorDetailsDiffResponse{symbols m..4m} -> A decodes again …
//!    I's list cheaper -> DiscSectorDetailsDiff{whole_list} -> I: its whole list -> A compares
//!    I's list too long, A's own fits -> DiscSectorDetailsDiff{whole_list, A's ids}
//!    -> I: compares, fetches A's extra ids, Hashes{I's extra ids}                 done
//! ```
//!
//! Both sides sketch every op id of the common arc (all time), so disc and ring differences are
//! repaired in the same round. The first batch is sized from the op counts both sides sent
//! (`dht_op_count`) when both store just the common arc (their difference is then a lower bound
//! of the set difference), plus a floor.
//!
//! Costs: each side reads every op id of the common arc once per differing round (one range
//! query) and holds them for the round (32 B each); a peer can make us do so at most
//! `burst_count` times per `burst_window`.

use super::reconcile::{self, Decoder, Id, Key, ReconcileError};
use super::round::Next;
use super::*;
use crate::wire::FennecReconcileMessage;

/// Reconciliation state of one round.
#[derive(Debug, Clone, Default)]
pub(super) enum Recon {
    /// Plain Kitsune2 this round.
    #[default]
    Off,
    /// Asked (initiator) or agreed (acceptor); no sketch yet.
    Agreed,
    /// Initiator: our ids and how many symbols were sent.
    Sending {
        /// Our ids in the common arc.
        ids: Vec<Id>,
        /// Symbols sent.
        sent: usize,
    },
    /// Acceptor: the decoder and the stream index asked for.
    Receiving {
        /// The decoder.
        decoder: Decoder,
        /// Symbols asked for (the next batch must end here).
        want: usize,
    },
}

impl From<ReconcileError> for GossipError {
    fn from(e: ReconcileError) -> Self {
        GossipError::Malformed(match e {
            ReconcileError::BadSymbol => "reconcile: truncated or bad symbol",
            ReconcileError::TooMany => "reconcile: too many symbols",
            ReconcileError::Forged => "reconcile: sketch decodes to ids we do not hold",
            ReconcileError::BadList => "reconcile: id list is not whole 32-byte ids",
        })
    }
}

/// Symbols always added to the first batch: equal op counts hide a difference, and a dozen
/// symbols (~520 B) decode a handful of ids in the first round trip.
const FIRST_BATCH_FLOOR: usize = 12;

/// Symbols in the first batch for op counts `ours` and `theirs`.
fn first_batch(ours: u64, theirs: Option<u64>, cap: usize) -> usize {
    let est = theirs.map_or(0, |t| t.abs_diff(ours)) as usize;
    est.saturating_add(est / 2)
        .saturating_add(FIRST_BATCH_FLOOR)
        .min(cap)
}

/// Bytes one sketch symbol takes on average (sum 32, check 8, count 1–3).
const SYMBOL_BYTES: usize = 43;

/// Whether `n` whole ids (32 B each) cost no more than `symbols` more sketch symbols. A
/// sketch needs ~1.35–2 symbols per differing id: when the difference is a large part of the
/// sets (a joiner, a peer back after long, two peers that each imported half), the sender's
/// whole list is cheaper and settles the round in one message.
fn list_cheaper(n: usize, symbols: usize) -> bool {
    n.saturating_mul(OP_ID_BYTES) <= symbols.saturating_mul(SYMBOL_BYTES)
}

/// A reconciliation message carrying `ids` whole.
fn whole_list(ids: &[Id]) -> FennecReconcileMessage {
    FennecReconcileMessage {
        ids: ids.concat().into(),
        whole_list: true,
        ..Default::default()
    }
}

impl Gossip {
    /// Whether to ask `peer` for reconciliation in our next Initiate (config on, and the last
    /// attempt with it did not fail).
    pub(super) fn wants_recon(&mut self, peer: &Url) -> bool {
        self.cfg.reconcile && !self.plain_next.remove(peer)
    }

    /// Our ids in `common` (all time), or `None` when the common sectors are no single arc.
    async fn ids_in_common(
        ctx: Ctx<'_>,
        common: &SectorSet,
    ) -> Result<Option<Vec<Id>>, GossipError> {
        let arc = DhtArc::from_sector_set(&common.0).unwrap_or(DhtArc::Empty);
        if arc.is_empty() || SectorSet(arc.to_sector_set()) != *common {
            return Ok(None);
        }
        let (start, end) = (
            Timestamp::from_micros(i64::MIN),
            Timestamp::from_micros(i64::MAX),
        );
        let got = ctx
            .store
            .retrieve_op_hashes_in_time_slice(arc, start, end)
            .await?;
        let ids = got
            .op_ids
            .iter()
            .filter_map(|i| i.as_bytes().try_into().ok());
        Ok(Some(ids.collect()))
    }

    /// Initiator, on an Accept that differs: the first sketch batch as `DiscSectorsDiff`, or
    /// `None` (not negotiated, or no single common arc) to go on as plain Kitsune2.
    pub(super) async fn recon_start(
        &mut self,
        ctx: Ctx<'_>,
        s: &mut Session,
        theirs: &K2GossipAcceptMessage,
        response: &mut Option<AcceptResponseMessage>,
    ) -> Result<Option<GossipMsg>, GossipError> {
        if !matches!(s.recon, Recon::Agreed) || !theirs.fennec_reconcile {
            return Ok(None);
        }
        let Some(ids) = Self::ids_in_common(ctx, &s.common).await? else {
            return Ok(None);
        };
        let cap = self.cfg.max_reconcile_symbols;
        // Their op count says something about the common arc only when it is their whole arc.
        let whole = super::round::sector_set(&theirs.arc_set).is_ok_and(|t| t == s.common);
        let count = theirs
            .dht_op_count
            .filter(|_| whole && self.sectors == s.common);
        let m = first_batch(ids.len() as u64, count, cap);
        s.summary.diff = DiffKind::Reconciled;
        let batch = if ids.len() <= self.cfg.max_ids && list_cheaper(ids.len(), m) {
            let batch = whole_list(&ids);
            s.recon = Recon::Sending { ids, sent: 0 };
            batch
        } else {
            let symbols = reconcile::encode(Key::new(&s.id), &ids, 0, m);
            s.recon = Recon::Sending { ids, sent: m };
            FennecReconcileMessage {
                symbols: reconcile::encode_symbols(&symbols).into(),
                ..Default::default()
            }
        };
        Ok(Some(GossipMsg::DiscSectorsDiff(
            K2GossipDiscSectorsDiffMessage {
                session_id: s.id.clone(),
                accept_response: response.take(),
                snapshot: None,
                fennec_reconcile: Some(batch),
            },
        )))
    }

    /// Acceptor: a batch of symbols (the first from `DiscSectorsDiff`, more from
    /// `DiscSectorDetailsDiffResponse`) or the initiator's whole id list. Decodes (or
    /// compares the list), or asks for more, or gives up at the cap.
    pub(super) async fn recon_receive(
        &mut self,
        ctx: Ctx<'_>,
        from: &Url,
        s: &mut Session,
        batch: Option<FennecReconcileMessage>,
    ) -> Result<Next, GossipError> {
        let batch = batch.ok_or(GossipError::Malformed("reconcile: no sketch"))?;
        let cap = self.cfg.max_reconcile_symbols;
        let (mut decoder, limit) = match std::mem::take(&mut s.recon) {
            Recon::Agreed => match Self::ids_in_common(ctx, &s.common).await? {
                Some(ids) => (Decoder::new(Key::new(&s.id), ids), cap),
                None => return Ok(self.terminate(from, s, "reconcile: no single common arc")),
            },
            Recon::Receiving { decoder, want } => (decoder, want.min(cap)),
            _ => return Err(GossipError::Malformed("reconcile: not negotiated")),
        };
        s.summary.diff = DiffKind::Reconciled;
        let diff = if batch.whole_list {
            let theirs = reconcile::decode_ids(&batch.ids, self.cfg.max_ids)?;
            self.stats.reconciled_by_list += 1;
            reconcile::list_difference(decoder.ours(), &theirs)
        } else {
            if batch.from as usize != decoder.len() {
                return Err(GossipError::Malformed("reconcile: batch out of sequence"));
            }
            let room = limit.saturating_sub(decoder.len());
            let symbols = reconcile::decode_symbols(&batch.symbols, room)?;
            decoder.add(&symbols);
            let Some(diff) = decoder.try_decode()? else {
                return Ok(self.recon_ask_more(from, s, decoder));
            };
            self.stats.reconciled_by_sketch += 1;
            diff
        };
        self.settle(ctx, from, s, diff).await
    }

    /// Ends the round on a known difference: fetches the ids only the peer holds and sends
    /// the ids only we hold (`Hashes`), at most `max_ids` each way, as in any one message: a
    /// difference may be longer than a whole list, and the peer refuses a longer `Hashes` as
    /// malformed. The next round finds the rest again.
    async fn settle(
        &mut self,
        ctx: Ctx<'_>,
        from: &Url,
        s: &mut Session,
        diff: reconcile::Difference,
    ) -> Result<Next, GossipError> {
        let theirs = diff.theirs.iter().take(self.cfg.max_ids);
        self.offered(
            ctx,
            from,
            s,
            theirs.map(|i| Bytes::copy_from_slice(i)).collect(),
        )
        .await?;
        let missing_ids: Vec<Bytes> = diff
            .ours
            .iter()
            .take(self.cfg.max_ids)
            .map(|i| Bytes::copy_from_slice(i))
            .collect();
        s.summary.ids_sent += missing_ids.len();
        let msg = K2GossipHashesMessage {
            session_id: s.id.clone(),
            missing_ids,
        };
        self.send(from, GossipMsg::Hashes(msg));
        Ok(Next::Completed)
    }

    /// Acceptor: too few symbols: asks for 4× as many, or for the initiator's whole id list
    /// when that costs less (its op count says how long it is at most), or sends our own
    /// whole list when theirs is too long and ours fits `max_ids` and costs less than more
    /// symbols (or the cap is reached: a joiner holding one introduction's ids or none, a
    /// peer of 35 000 initiating), or ends the round at the cap (the initiator then goes
    /// plain with us next time).
    fn recon_ask_more(&mut self, from: &Url, s: &mut Session, decoder: Decoder) -> Next {
        let have = decoder.len();
        let cap = self.cfg.max_reconcile_symbols;
        let want = have.saturating_mul(4).min(cap);
        let list = s.their_op_count.map_or(usize::MAX, |n| n as usize);
        if list <= self.cfg.max_ids && list_cheaper(list, want.max(have + 1) - have) {
            let ask = FennecReconcileMessage {
                from: have as u32,
                whole_list: true,
                ..Default::default()
            };
            return self.recon_request(from, s, decoder, have, ask);
        }
        let ours = decoder.ours().len();
        let fits = ours <= self.cfg.max_ids;
        if fits && (have >= cap || list_cheaper(ours, want - have)) {
            // Their list is too long, ours is not: the initiator settles the difference
            // from it (`Hashes`) instead of the round ending and the next going plain.
            let give = FennecReconcileMessage {
                from: have as u32,
                whole_list: true,
                gives_list: true,
                ids: decoder.ours().concat().into(),
                ..Default::default()
            };
            return self.recon_request(from, s, decoder, have, give);
        }
        if have >= cap || have == 0 {
            self.stats.reconcile_gave_up += 1;
            return self.terminate(from, s, "reconcile: too many differences");
        }
        let ask = FennecReconcileMessage {
            from: have as u32,
            want: want as u32,
            ..Default::default()
        };
        self.recon_request(from, s, decoder, want, ask)
    }

    /// Acceptor: sends `ask` and waits for the batch ending at `want`.
    fn recon_request(
        &mut self,
        from: &Url,
        s: &mut Session,
        decoder: Decoder,
        want: usize,
        ask: FennecReconcileMessage,
    ) -> Next {
        let msg = K2GossipDiscSectorDetailsDiffMessage {
            session_id: s.id.clone(),
            provided_agents: Vec::new(),
            snapshot: None,
            fennec_reconcile: Some(ask),
        };
        s.recon = Recon::Receiving { decoder, want };
        self.send(from, GossipMsg::DiscSectorDetailsDiff(msg));
        Next::Open(Stage::AwaitReconMore)
    }

    /// Initiator: the acceptor asks for more symbols or our whole list, or gives its own
    /// whole list (ids in a `whole_list` request), which settles the round here.
    pub(super) async fn recon_more(
        &mut self,
        ctx: Ctx<'_>,
        from: &Url,
        s: &mut Session,
        ask: Option<FennecReconcileMessage>,
    ) -> Result<Next, GossipError> {
        let ask = ask.ok_or(GossipError::Malformed("reconcile: no request"))?;
        let Recon::Sending { ids, sent } = &mut s.recon else {
            return Err(GossipError::Malformed("reconcile: not negotiated"));
        };
        if ask.whole_list && (ask.gives_list || !ask.ids.is_empty()) {
            let theirs = reconcile::decode_ids(&ask.ids, self.cfg.max_ids)?;
            let diff = reconcile::list_difference(ids, &theirs);
            self.stats.reconciled_by_list += 1;
            return self.settle(ctx, from, s, diff).await;
        }
        let batch = if ask.whole_list {
            if ids.len() > self.cfg.max_ids {
                let reason = "reconcile: id list over max_ids";
                self.stats.reconcile_gave_up += 1;
                return Ok(self.terminate(from, s, reason));
            }
            whole_list(ids)
        } else {
            let want = ask.want as usize;
            if ask.from as usize != *sent || want <= *sent || want > self.cfg.max_reconcile_symbols
            {
                return Err(GossipError::Malformed("reconcile: bad request"));
            }
            let symbols = reconcile::encode(Key::new(&s.id), ids, *sent, want);
            let from = *sent as u32;
            *sent = want;
            FennecReconcileMessage {
                from,
                symbols: reconcile::encode_symbols(&symbols).into(),
                ..Default::default()
            }
        };
        let msg = K2GossipDiscSectorDetailsDiffResponseMessage {
            session_id: s.id.clone(),
            missing_ids: Vec::new(),
            snapshot: None,
            fennec_reconcile: Some(batch),
        };
        self.send(from, GossipMsg::DiscSectorDetailsDiffResponse(msg));
        Ok(Next::Open(Stage::AwaitRecon))
    }
}
