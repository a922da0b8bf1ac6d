//! Pages of the ops a peer holds, for the app (`space.ops`): its history after a reload,
//! read from the store alone ([`OpStore::retrieve_held_op_ids`]). The order is the store's,
//! `(created_at, op_id)`, or its reverse; a page continues after the last op of the one
//! before (a cursor), since ops of one `publishMany` share their `created_at` and a time
//! bound alone cannot split them.

use super::{OpStore, StoreError};
use crate::model::arc::DhtArc;
use crate::model::id::OpId;
use crate::model::time::Timestamp;

/// Which held ops to read: those with `created_at` in `[start, end)` µs, after `after` in
/// the chosen order, at most `limit` of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldOpsQuery {
    /// Lowest `created_at` kept, µs.
    pub start: Timestamp,
    /// `created_at` kept are below this, µs.
    pub end: Timestamp,
    /// Newest first (`(created_at, op_id)` descending) instead of oldest first.
    pub newest_first: bool,
    /// Only the ops after this `(created_at, op_id)` in the chosen order: the last op of
    /// the page before. It need not be held.
    pub after: Option<(Timestamp, OpId)>,
    /// At most this many ops; `None` for all.
    pub limit: Option<usize>,
}

impl HeldOpsQuery {
    /// Every held op, oldest first.
    pub const ALL: HeldOpsQuery = HeldOpsQuery {
        start: Timestamp(i64::MIN),
        end: Timestamp(i64::MAX),
        newest_first: false,
        after: None,
        limit: None,
    };

    /// Whether no op can belong to this page: `[start, end)` is empty, or the cursor is
    /// past its end in the chosen order (before `start` newest first, at or after `end`
    /// oldest first).
    pub fn leaves_none(&self) -> bool {
        let cursor_past = match self.after {
            None => false,
            Some((at, _)) if self.newest_first => at < self.start,
            Some((at, _)) => at >= self.end,
        };
        self.start >= self.end || cursor_past
    }

    /// The cursor when its time is inside `[start, end)`: only then do the ops of its µs
    /// need cutting by id (outside, the range alone bounds the page).
    pub fn cursor_in_range(&self) -> Option<(Timestamp, &OpId)> {
        let (at, id) = self.after.as_ref()?;
        (self.start <= *at && *at < self.end).then_some((*at, id))
    }

    /// Whether an op created at `created_at` with id `id` belongs to this page: in
    /// `[start, end)` and past the cursor in the chosen order (the limit aside).
    pub fn holds(&self, created_at: Timestamp, id: &OpId) -> bool {
        let past_cursor = match &self.after {
            None => true,
            Some((at, after)) if self.newest_first => (created_at, id) < (*at, after),
            Some((at, after)) => (created_at, id) > (*at, after),
        };
        self.start <= created_at && created_at < self.end && past_cursor
    }
}

/// [`OpStore::retrieve_held_op_ids`] for any store: the store's time-slice query over the
/// whole ring, in one read of at most two ranges (the cursor's own µs, whose ops are cut by
/// id, and the rest of the range), cut to the limit.
///
/// # Errors
/// As [`OpStore::retrieve_op_hashes_in_time_slices`].
pub async fn held_op_ids_by_time_slices(
    store: &dyn OpStore,
    q: &HeldOpsQuery,
) -> Result<Vec<OpId>, StoreError> {
    let (tie, rest) = ranges(q);
    let mut asked = Vec::with_capacity(2);
    asked.extend(tie.map(|t| (DhtArc::FULL, t, next_micro(t))));
    asked.push((DhtArc::FULL, rest.0, rest.1));
    let mut found = store.retrieve_op_hashes_in_time_slices(asked).await?;
    let mut rest_ids = found.pop().map(|r| r.op_ids).unwrap_or_default();
    let mut ids = match (tie, found.pop()) {
        (Some(t), Some(tied)) => tied
            .op_ids
            .into_iter()
            .filter(|id| q.holds(t, id))
            .collect(),
        _ => Vec::new(),
    };
    if q.newest_first {
        ids.reverse();
        rest_ids.reverse();
    }
    ids.append(&mut rest_ids);
    if let Some(limit) = q.limit {
        ids.truncate(limit);
    }
    Ok(ids)
}

/// The cursor's µs when it is inside `[start, end)` (its ops are cut by id), and the rest of
/// the range past the cursor in the chosen order.
fn ranges(q: &HeldOpsQuery) -> (Option<Timestamp>, (Timestamp, Timestamp)) {
    let Some((at, _)) = q.after else {
        return (None, (q.start, q.end));
    };
    let tie = q.cursor_in_range().map(|(t, _)| t);
    let rest = if q.newest_first {
        (q.start, q.end.min(at))
    } else {
        (q.start.max(next_micro(at)), q.end)
    };
    (tie, rest)
}

/// The µs after `t` (`t` itself at the end of time).
fn next_micro(t: Timestamp) -> Timestamp {
    Timestamp(t.0.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::MetaOp;
    use crate::model::op::Op;
    use crate::store::MemOpStore;
    use bytes::Bytes;
    use futures::executor::block_on;

    /// A store holding ops at `created_at` 10, 20, 20, 20, 30 µs; returns it with their
    /// `(created_at, id)` in the store's order.
    fn store() -> (MemOpStore, Vec<(Timestamp, OpId)>) {
        let s = MemOpStore::new(|| Timestamp(1_000));
        let ops: Vec<Op> = [10, 20, 20, 20, 30]
            .iter()
            .enumerate()
            .map(|(i, &t)| Op {
                created_at: Timestamp(t),
                payload: Bytes::from(vec![i as u8]),
            })
            .collect();
        let metas = ops
            .iter()
            .map(|o| MetaOp {
                op_id: o.id(),
                op_data: o.encode(),
            })
            .collect();
        block_on(s.process_incoming_ops(metas)).unwrap();
        let mut order: Vec<_> = ops.iter().map(|o| (o.created_at, o.id())).collect();
        order.sort();
        (s, order)
    }

    fn ids(s: &MemOpStore, q: HeldOpsQuery) -> Vec<OpId> {
        block_on(held_op_ids_by_time_slices(s, &q)).unwrap()
    }

    fn of(order: &[(Timestamp, OpId)], idx: &[usize]) -> Vec<OpId> {
        idx.iter().map(|&i| order[i].1.clone()).collect()
    }

    #[test]
    fn all_oldest_or_newest_first_in_the_stores_order() {
        let (s, order) = store();
        assert_eq!(ids(&s, HeldOpsQuery::ALL), of(&order, &[0, 1, 2, 3, 4]));
        let newest = HeldOpsQuery {
            newest_first: true,
            ..HeldOpsQuery::ALL
        };
        assert_eq!(ids(&s, newest), of(&order, &[4, 3, 2, 1, 0]));
    }

    /// Pages of 2 read one after another, each after the last op of the page before, give
    /// every op once in order, in both directions, though three ops share one µs.
    #[test]
    fn pages_after_the_last_op_split_ops_of_one_microsecond() {
        let (s, order) = store();
        for newest_first in [false, true] {
            let mut read = Vec::new();
            let mut after = None;
            for _ in 0..order.len() + 1 {
                let page = ids(
                    &s,
                    HeldOpsQuery {
                        newest_first,
                        after: after.clone(),
                        limit: Some(2),
                        ..HeldOpsQuery::ALL
                    },
                );
                let Some(last) = page.last() else {
                    break;
                };
                let at = order.iter().find(|(_, id)| id == last).unwrap().0;
                after = Some((at, last.clone()));
                assert!(page.len() <= 2);
                read.extend(page);
            }
            let mut want = of(&order, &[0, 1, 2, 3, 4]);
            if newest_first {
                want.reverse();
            }
            assert_eq!(read, want, "newest_first {newest_first}");
        }
    }

    /// The cursor need not be held: its `(created_at, id)` places it; the range still
    /// bounds what follows it.
    #[test]
    fn a_cursor_not_held_and_a_range_bound_what_is_read() {
        let (s, order) = store();
        let middle = order[2].1.clone();
        let mut absent = middle.as_bytes().to_vec();
        absent[31] ^= 1;
        let absent = OpId::from_bytes(absent);
        let after_absent: Vec<_> = order
            .iter()
            .filter(|(t, id)| (*t, id) > (Timestamp(20), &absent))
            .map(|(_, id)| id.clone())
            .collect();
        let q = HeldOpsQuery {
            after: Some((Timestamp(20), absent.clone())),
            ..HeldOpsQuery::ALL
        };
        assert_eq!(ids(&s, q), after_absent);
        let bounded = HeldOpsQuery {
            start: Timestamp(15),
            end: Timestamp(30),
            newest_first: true,
            after: Some((Timestamp(20), order[3].1.clone())),
            limit: None,
        };
        assert_eq!(ids(&s, bounded), of(&order, &[2, 1]));
        let before_range = HeldOpsQuery {
            start: Timestamp(15),
            after: Some((Timestamp(5), order[0].1.clone())),
            ..HeldOpsQuery::ALL
        };
        assert_eq!(ids(&s, before_range), of(&order, &[1, 2, 3, 4]));
        let past_range = HeldOpsQuery {
            end: Timestamp(30),
            after: Some((Timestamp(40), order[4].1.clone())),
            newest_first: true,
            ..HeldOpsQuery::ALL
        };
        assert_eq!(ids(&s, past_range), of(&order, &[3, 2, 1, 0]));
    }

    /// `leaves_none` is exactly "no `(created_at, id)` belongs to the page" over a grid of
    /// times at and either side of every bound, with ids below and above the cursor's.
    #[test]
    fn leaves_none_when_no_op_could_belong() {
        let times = [
            i64::MIN,
            -1,
            0,
            9,
            10,
            11,
            19,
            20,
            21,
            29,
            30,
            31,
            i64::MAX - 1,
        ];
        let id = |b: u8| OpId::from_bytes(vec![b; 32]);
        let (low, mid, high) = (id(0x00), id(0x80), id(0xFF));
        let mut afters = vec![None];
        afters.extend(times.iter().map(|&t| Some((Timestamp(t), mid.clone()))));
        for start in [i64::MIN, 10, 20] {
            for end in [20, 30, i64::MAX] {
                for newest_first in [false, true] {
                    for after in &afters {
                        let q = HeldOpsQuery {
                            start: Timestamp(start),
                            end: Timestamp(end),
                            newest_first,
                            after: after.clone(),
                            limit: None,
                        };
                        let some = times
                            .iter()
                            .any(|&t| q.holds(Timestamp(t), &low) || q.holds(Timestamp(t), &high));
                        assert_eq!(q.leaves_none(), !some, "{q:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_limit_of_zero_gives_nothing() {
        let (s, _) = store();
        let q = HeldOpsQuery {
            limit: Some(0),
            ..HeldOpsQuery::ALL
        };
        assert!(ids(&s, q).is_empty());
    }
}
