//! [`IdbOpStore`]: the op store on IndexedDB (wasm32 only). What a browser peer uses.
//!
//! # Why `web-sys` directly, not an IndexedDB crate
//! The store's guarantees live in details the wrapper crates (`indexed_db_futures`, `idb`,
//! `rexie`) abstract over: acknowledging a write only on the transaction's `complete` event
//! (not on a request's `success`), aborting the transaction on any error so a batch is never
//! half-written, `durability: "strict"` (an option `web-sys` only has behind
//! `web_sys_unstable_apis`; bound here in three lines), the `blocked` and `versionchange`
//! events, and the `DOMException` names (`QuotaExceededError`). The glue for that is small
//! (a request stream, a transaction-done future, below), uses only `web-sys`/`js-sys` which
//! the crate already depends on, and cannot drift from the pinned `wasm-bindgen =0.2.130`.
//!
//! # Database layout (schema version 1)
//! One database per agent and space, named `fennec-ops:<space b64url>:<agent b64url>`.
//!
//! | object store | key | value | indexes |
//! |---|---|---|---|
//! | `ops`    | op id (binary) | the encoded op (`Uint8Array`) | – |
//! | `meta`   | `i` (op id, binary) | `{i, l: loc, s: sector, h, o: created_at hi/lo, ah, al: stored_at hi/lo, n: bytes}` | `time [h,o]`, `sector_time [s,h,o]`, `stored [ah,al]` |
//! | `slices` | `[arc start, arc end, index hi, index lo]` | the slice hash (`Uint8Array`) | – |
//! | `info`   | `"totals"` | `{c: op count, b: op bytes}` | – |
//!
//! i64 µs timestamps and u64 slice indexes are split into a signed high and an unsigned low
//! 32-bit half so that IndexedDB's number keys (f64) order them exactly over the whole range.
//! Index entries with equal keys are ordered by primary key, the op id, so `time` yields
//! `(created_at, op_id)` order directly. Queries use `sector_time` (one range per sector, 512
//! sectors of 2^23 locations as in Kitsune2) for arcs of at most 64 sectors and `time` plus a
//! location filter for wider arcs; `stored` serves "new ops since". Op data lives apart from the
//! metadata so that index scans never load op bodies.
//!
//! # Transactions
//! Every call is one transaction. Writes use `durability: "strict"` by default (the browser
//! flushes to disk before `complete`); a call resolves only after `complete`, and any error
//! aborts the whole transaction. The stored-at stamps of a write and the bookmark of a read are
//! taken in the same synchronous step that creates their transaction, and IndexedDB runs
//! overlapping transactions in creation order, so a bookmark never passes an op it did not see.
//!
//! One handle per database per page is assumed (several tabs may each hold one; the stored-at
//! clock of each is wall-clock based, so their stamps interleave sensibly).

use bytes::Bytes;
use futures::future::LocalBoxFuture;
use js_sys::{Array, Object, Reflect, Uint8Array};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::rc::Rc;
use std::task::{Poll, Waker};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue, prelude::wasm_bindgen};
use web_sys::{
    DomException, IdbCursorDirection, IdbCursorWithValue, IdbDatabase, IdbFactory, IdbKeyRange,
    IdbObjectStore, IdbObjectStoreParameters, IdbOpenDbRequest, IdbRequest, IdbTransaction,
    IdbVersionChangeEvent,
};

use super::{
    BoundedAcc, BoundedOpIds, MetaOp, OpStore, OpTotals, PreparedOp, StoreError, StoredAtClock,
    TimeSliceOpIds, check_slice_hash, dedup_ids, prepare_batch, slice_key,
};
use crate::arc::DhtArc;
use crate::id::{AgentId, Locator, OpId, SpaceId};
use crate::op::StoredOp;
use crate::time::Timestamp;

/// Schema version this code writes; [`upgrade`] brings any older database up to it.
pub const SCHEMA_VERSION: u32 = 1;

const OPS: &str = "ops";
const META: &str = "meta";
const SLICES: &str = "slices";
const INFO: &str = "info";
const IDX_TIME: &str = "time";
const IDX_SECTOR_TIME: &str = "sector_time";
const IDX_STORED: &str = "stored";
const TOTALS_KEY: &str = "totals";
/// Arcs spanning at most this many sectors are queried one sector range at a time.
const PER_SECTOR_MAX: usize = 64;
const SECTOR_SHIFT: u32 = 23;
const SECTORS: u32 = 512;

/// How hard the browser works to make a committed write survive a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `"strict"`: flushed to disk before `complete`; survives power loss. The default.
    #[default]
    Strict,
    /// `"relaxed"`: `complete` once the OS has the data; survives a tab or browser crash, not
    /// a power cut. Faster for bursts.
    Relaxed,
    /// `"default"`: whatever the browser does by default.
    BrowserDefault,
}

impl Durability {
    fn as_str(self) -> &'static str {
        match self {
            Durability::Strict => "strict",
            Durability::Relaxed => "relaxed",
            Durability::BrowserDefault => "default",
        }
    }
}

/// Options of [`IdbOpStore::open`].
#[derive(Debug, Clone, Copy, Default)]
pub struct IdbOptions {
    /// How op ids map to ring locations; the network's, and the same every time a database is
    /// opened (locations are stored with the ops).
    pub locator: Locator,
    /// Durability of write transactions.
    pub durability: Durability,
}

/// An [`OpStore`] on IndexedDB; see the module docs for layout and guarantees.
pub struct IdbOpStore {
    db: IdbDatabase,
    shared: Rc<Shared>,
    options: IdbOptions,
    clock: StoredAtClock,
    persisted: Rc<Cell<Option<bool>>>,
    _on_versionchange: Closure<dyn FnMut()>,
    _on_close: Closure<dyn FnMut()>,
}

struct Shared {
    name: String,
    /// Why the handle no longer works, once it does not.
    gone: RefCell<Option<StoreError>>,
}

impl std::fmt::Debug for IdbOpStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdbOpStore")
            .field("name", &self.shared.name)
            .field("gone", &self.shared.gone.borrow())
            .finish()
    }
}

impl Drop for IdbOpStore {
    fn drop(&mut self) {
        self.db.set_onversionchange(None);
        self.db.set_onclose(None);
        self.db.close();
    }
}

/// The database name for an agent in a space: `fennec-ops:<space>:<agent>` (base64url ids).
pub fn database_name(space: &SpaceId, agent: &AgentId) -> String {
    format!("fennec-ops:{}:{}", space.to_b64(), agent.to_b64())
}

impl IdbOpStore {
    /// Opens (creating or upgrading as needed) the op store of `agent` in `space`, and asks
    /// the browser to keep the origin's storage (`navigator.storage.persist()`, in the
    /// background; see [`IdbOpStore::persisted`]).
    ///
    /// # Errors
    /// [`StoreError::Blocked`] if an upgrade is needed while another tab keeps an older
    /// version open; [`StoreError::Backend`] if IndexedDB is unavailable, the database on disk
    /// is newer than this code (`VersionError`), or the upgrade failed;
    /// [`StoreError::QuotaExceeded`] if there is no room to create it.
    pub async fn open(
        space: &SpaceId,
        agent: &AgentId,
        options: IdbOptions,
    ) -> Result<IdbOpStore, StoreError> {
        let name = database_name(space, agent);
        let db = open_database(&name).await?;
        let shared = Rc::new(Shared {
            name,
            gone: RefCell::new(None),
        });

        // Another tab wants to upgrade or delete the database: step aside, say why.
        let (d, s) = (db.clone(), shared.clone());
        let on_versionchange = Closure::<dyn FnMut()>::new(move || {
            d.close();
            s.gone
                .borrow_mut()
                .get_or_insert(StoreError::VersionChange { db: s.name.clone() });
        });
        db.set_onversionchange(Some(on_versionchange.as_ref().unchecked_ref()));
        // The browser closed the connection (storage cleared, disk error).
        let s = shared.clone();
        let on_close = Closure::<dyn FnMut()>::new(move || {
            s.gone
                .borrow_mut()
                .get_or_insert(StoreError::Backend(format!(
                    "the browser closed database {} (storage cleared or I/O error)",
                    s.name
                )));
        });
        db.set_onclose(Some(on_close.as_ref().unchecked_ref()));

        let store = IdbOpStore {
            db,
            shared,
            options,
            clock: StoredAtClock::default(),
            persisted: Rc::new(Cell::new(None)),
            _on_versionchange: on_versionchange,
            _on_close: on_close,
        };
        let last = store.last_stored_at().await?;
        store.clock.observe(last);
        request_persistence(store.persisted.clone());
        Ok(store)
    }

    /// Deletes the database of `agent` in `space` (all its ops and slice hashes).
    ///
    /// # Errors
    /// [`StoreError::Blocked`] if another connection stays open (the deletion then happens
    /// once it closes); [`StoreError::Backend`] otherwise.
    pub async fn delete(space: &SpaceId, agent: &AgentId) -> Result<(), StoreError> {
        let name = database_name(space, agent);
        let req = factory()?.delete_database(&name).map_err(js_error)?;
        let stream = Req::new(req.clone().unchecked_into());
        let s = stream.state.clone();
        let n = name.clone();
        let on_blocked = Closure::<dyn FnMut()>::new(move || {
            push(&s, Err(StoreError::Blocked { db: n.clone() }));
        });
        req.set_onblocked(Some(on_blocked.as_ref().unchecked_ref()));
        let r = stream.next().await.map(drop);
        req.set_onblocked(None);
        r
    }

    /// The answer to `navigator.storage.persist()` once the browser gave it: `Some(true)` if
    /// the origin's storage will not be evicted under pressure, `None` while pending or where
    /// the API is missing.
    pub fn persisted(&self) -> Option<bool> {
        self.persisted.get()
    }

    /// The database name ([`database_name`]).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    fn check_open(&self) -> Result<(), StoreError> {
        match &*self.shared.gone.borrow() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// A transaction over `stores`; writes get the configured durability.
    fn tx(&self, stores: &[&str], write: bool) -> Result<IdbTransaction, StoreError> {
        self.check_open()?;
        let names: Array = stores.iter().map(|s| JsValue::from_str(s)).collect();
        let r = if write {
            let opts = Object::new();
            set(
                &opts,
                "durability",
                &JsValue::from_str(self.options.durability.as_str()),
            )?;
            transaction_with_options(&self.db, &names, "readwrite", &opts)
        } else {
            self.db.transaction_with_str_sequence(&names)
        };
        r.map_err(|e| {
            // InvalidStateError: the connection is closing; report why if we know.
            self.check_open().err().unwrap_or_else(|| js_error(e))
        })
    }

    async fn last_stored_at(&self) -> Result<Option<Timestamp>, StoreError> {
        let tx = self.tx(&[META], false)?;
        let idx = store(&tx, META)?.index(IDX_STORED).map_err(js_error)?;
        let req = idx
            .open_cursor_with_range_and_direction(&JsValue::NULL, IdbCursorDirection::Prev)
            .map_err(js_error)?;
        let v = Req::new(req).next().await?;
        if v.is_null() || v.is_undefined() {
            return Ok(None);
        }
        let cursor: IdbCursorWithValue = v.dyn_into().map_err(|_| corrupt("cursor"))?;
        let m = MetaRec::read(&cursor.value().map_err(js_error)?)?;
        Ok(Some(m.stored_at))
    }

    async fn process(&self, ops: Vec<MetaOp>) -> Result<Vec<StoredOp>, StoreError> {
        self.check_open()?;
        let prepared = prepare_batch(ops, &self.options.locator)?;
        if prepared.is_empty() {
            return Ok(Vec::new());
        }
        // Stamps and transaction in one synchronous step (see the module docs).
        let now = Timestamp::now();
        let stamped: Vec<(PreparedOp, Timestamp)> = prepared
            .into_iter()
            .map(|p| {
                let t = self.clock.stamp(now);
                (p, t)
            })
            .collect();
        let tx = self.tx(&[OPS, META, INFO], true)?;
        let done = TxDone::new(&tx);
        let body = async {
            let ops_store = store(&tx, OPS)?;
            let meta = store(&tx, META)?;
            let info = store(&tx, INFO)?;
            let exists: Vec<Req> = stamped
                .iter()
                .map(|(p, _)| {
                    meta.count_with_key(&id_key(&p.op_id))
                        .map(Req::new)
                        .map_err(js_error)
                })
                .collect::<Result<_, _>>()?;
            let totals_req = Req::new(info.get(&JsValue::from_str(TOTALS_KEY)).map_err(js_error)?);
            let mut new = Vec::new();
            for ((p, t), req) in stamped.iter().zip(exists) {
                if req.next().await?.as_f64().unwrap_or(0.0) == 0.0 {
                    new.push((p, *t));
                }
            }
            let mut totals = read_totals(&totals_req.next().await?)?;
            for (p, t) in &new {
                let key = id_key(&p.op_id);
                ops_store
                    .put_with_key(&Uint8Array::from(&p.data[..]), &key)
                    .map_err(js_error)?;
                let rec: JsValue = MetaRec::write(p, *t)?.into();
                meta.put(&rec).map_err(js_error)?;
                totals.op_count += 1;
                totals.op_bytes = totals.op_bytes.saturating_add(u64::from(p.len()));
            }
            if !new.is_empty() {
                let rec: JsValue = write_totals(&totals)?.into();
                info.put_with_key(&rec, &JsValue::from_str(TOTALS_KEY))
                    .map_err(js_error)?;
            }
            Ok::<_, StoreError>(new.iter().map(|(p, _)| p.stored()).collect::<Vec<_>>())
        };
        let out = abort_on_error(&tx, body.await)?;
        done.wait()
            .await
            .map_err(|e| self.check_open().err().unwrap_or(e))?;
        Ok(out)
    }

    async fn retrieve(&self, op_ids: Vec<OpId>) -> Result<Vec<MetaOp>, StoreError> {
        let op_ids = dedup_ids(op_ids);
        let tx = self.tx(&[OPS], false)?;
        let body = async {
            let ops_store = store(&tx, OPS)?;
            let reqs: Vec<Req> = op_ids
                .iter()
                .map(|id| ops_store.get(&id_key(id)).map(Req::new).map_err(js_error))
                .collect::<Result<_, _>>()?;
            let mut out = Vec::new();
            for (op_id, req) in op_ids.into_iter().zip(reqs) {
                let v = req.next().await?;
                if v.is_undefined() {
                    continue;
                }
                out.push(MetaOp {
                    op_id,
                    op_data: bytes_of(&v)?,
                });
            }
            Ok(out)
        };
        abort_on_error(&tx, body.await)
    }

    async fn filter_out(&self, op_ids: Vec<OpId>) -> Result<Vec<OpId>, StoreError> {
        let op_ids = dedup_ids(op_ids);
        let tx = self.tx(&[META], false)?;
        let body = async {
            let meta = store(&tx, META)?;
            let reqs: Vec<Req> = op_ids
                .iter()
                .map(|id| {
                    meta.count_with_key(&id_key(id))
                        .map(Req::new)
                        .map_err(js_error)
                })
                .collect::<Result<_, _>>()?;
            let mut out = Vec::new();
            for (op_id, req) in op_ids.into_iter().zip(reqs) {
                if req.next().await?.as_f64().unwrap_or(0.0) == 0.0 {
                    out.push(op_id);
                }
            }
            Ok(out)
        };
        abort_on_error(&tx, body.await)
    }

    async fn time_slice(
        &self,
        arc: DhtArc,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<TimeSliceOpIds, StoreError> {
        self.check_open()?;
        if arc.is_empty() || start >= end {
            return Ok(TimeSliceOpIds::default());
        }
        let tx = self.tx(&[META], false)?;
        let body = async {
            let meta = store(&tx, META)?;
            let sectors = arc_sectors(arc);
            let (lo, hi) = (split_i64(start.as_micros()), split_i64(end.as_micros()));
            let mut reqs = Vec::new();
            if sectors.len() > PER_SECTOR_MAX {
                let range = key_range(&arr(&[lo.0, lo.1]), &arr(&[hi.0, hi.1]))?;
                let idx = meta.index(IDX_TIME).map_err(js_error)?;
                reqs.push(Req::new(idx.get_all_with_key(&range).map_err(js_error)?));
            } else {
                let idx = meta.index(IDX_SECTOR_TIME).map_err(js_error)?;
                for s in sectors {
                    let s = f64::from(s);
                    let range = key_range(&arr(&[s, lo.0, lo.1]), &arr(&[s, hi.0, hi.1]))?;
                    reqs.push(Req::new(idx.get_all_with_key(&range).map_err(js_error)?));
                }
            }
            let mut recs = Vec::new();
            for req in reqs {
                let list: Array = req.next().await?.dyn_into().map_err(|_| corrupt("list"))?;
                for v in list.iter() {
                    let m = MetaRec::read(&v)?;
                    if arc.contains(m.loc) {
                        recs.push(m);
                    }
                }
            }
            recs.sort_by(|a, b| (a.created_at, &a.op_id).cmp(&(b.created_at, &b.op_id)));
            let total_bytes = recs.iter().map(|m| u64::from(m.len)).sum();
            Ok(TimeSliceOpIds {
                op_ids: recs.into_iter().map(|m| m.op_id).collect(),
                total_bytes,
            })
        };
        abort_on_error(&tx, body.await)
    }

    async fn bounded(
        &self,
        arc: DhtArc,
        start: Timestamp,
        limit_bytes: u32,
    ) -> Result<BoundedOpIds, StoreError> {
        self.check_open()?;
        let mut acc = BoundedAcc::new(arc, limit_bytes);
        // Bookmark and transaction in one synchronous step (see the module docs).
        let bookmark = self.clock.bookmark(Timestamp::now());
        if arc.is_empty() {
            return Ok(acc.finish(bookmark));
        }
        let tx = self.tx(&[META], false)?;
        let body = async {
            let idx = store(&tx, META)?.index(IDX_STORED).map_err(js_error)?;
            let (h, l) = split_i64(start.as_micros());
            let range = IdbKeyRange::lower_bound(&arr(&[h, l])).map_err(js_error)?;
            let req = Req::new(idx.open_cursor_with_range(&range).map_err(js_error)?);
            loop {
                let v = req.next().await?;
                if v.is_null() || v.is_undefined() {
                    break;
                }
                let cursor: IdbCursorWithValue = v.dyn_into().map_err(|_| corrupt("cursor"))?;
                let m = MetaRec::read(&cursor.value().map_err(js_error)?)?;
                if !acc.offer(&m.op_id, m.loc, m.len, m.stored_at) {
                    break;
                }
                cursor.continue_().map_err(js_error)?;
            }
            Ok(())
        };
        abort_on_error(&tx, body.await)?;
        Ok(acc.finish(bookmark))
    }

    async fn earliest(&self, arc: DhtArc) -> Result<Option<Timestamp>, StoreError> {
        self.check_open()?;
        if arc.is_empty() {
            return Ok(None);
        }
        let tx = self.tx(&[META], false)?;
        let body = async {
            let meta = store(&tx, META)?;
            let sectors = arc_sectors(arc);
            let mut cursors = Vec::new();
            if sectors.len() == SECTORS as usize {
                // The arc misses at most parts of two sectors: walk the time index.
                let idx = meta.index(IDX_TIME).map_err(js_error)?;
                cursors.push(Req::new(idx.open_cursor().map_err(js_error)?));
            } else {
                let idx = meta.index(IDX_SECTOR_TIME).map_err(js_error)?;
                for s in sectors {
                    let range = key_range(&arr(&[f64::from(s)]), &arr(&[f64::from(s) + 1.0]))?;
                    cursors.push(Req::new(
                        idx.open_cursor_with_range(&range).map_err(js_error)?,
                    ));
                }
            }
            let mut best: Option<Timestamp> = None;
            for req in cursors {
                loop {
                    let v = req.next().await?;
                    if v.is_null() || v.is_undefined() {
                        break;
                    }
                    let cursor: IdbCursorWithValue = v.dyn_into().map_err(|_| corrupt("cursor"))?;
                    let m = MetaRec::read(&cursor.value().map_err(js_error)?)?;
                    if arc.contains(m.loc) {
                        best = Some(best.map_or(m.created_at, |b| b.min(m.created_at)));
                        break;
                    }
                    cursor.continue_().map_err(js_error)?;
                }
            }
            Ok(best)
        };
        abort_on_error(&tx, body.await)
    }

    async fn put_slice(&self, arc: DhtArc, index: u64, hash: Bytes) -> Result<(), StoreError> {
        self.check_open()?;
        let (s, e) = slice_key(arc)?;
        check_slice_hash(&hash)?;
        let tx = self.tx(&[SLICES], true)?;
        let done = TxDone::new(&tx);
        let r = store(&tx, SLICES).and_then(|st| {
            st.put_with_key(&Uint8Array::from(&hash[..]), &slice_id(s, e, index))
                .map_err(js_error)
        });
        abort_on_error(&tx, r)?;
        done.wait()
            .await
            .map_err(|e| self.check_open().err().unwrap_or(e))
    }

    async fn slices(&self, arc: DhtArc) -> Result<Vec<(u64, Bytes)>, StoreError> {
        self.check_open()?;
        let Ok((s, e)) = slice_key(arc) else {
            return Ok(Vec::new());
        };
        let tx = self.tx(&[SLICES], false)?;
        let body = async {
            let st = store(&tx, SLICES)?;
            let range = slice_range(s, e)?;
            let keys = Req::new(st.get_all_keys_with_key(&range).map_err(js_error)?);
            let vals = Req::new(st.get_all_with_key(&range).map_err(js_error)?);
            let keys: Array = keys.next().await?.dyn_into().map_err(|_| corrupt("keys"))?;
            let vals: Array = vals
                .next()
                .await?
                .dyn_into()
                .map_err(|_| corrupt("values"))?;
            keys.iter()
                .zip(vals.iter())
                .map(|(k, v)| Ok((slice_index_of(&k)?, bytes_of(&v)?)))
                .collect()
        };
        abort_on_error(&tx, body.await)
    }

    async fn slice_count(&self, arc: DhtArc) -> Result<u64, StoreError> {
        self.check_open()?;
        let Ok((s, e)) = slice_key(arc) else {
            return Ok(0);
        };
        let tx = self.tx(&[SLICES], false)?;
        let body = async {
            let st = store(&tx, SLICES)?;
            let range: JsValue = slice_range(s, e)?.into();
            let req = st
                .open_key_cursor_with_range_and_direction(&range, IdbCursorDirection::Prev)
                .map_err(js_error)?;
            let v = Req::new(req).next().await?;
            if v.is_null() || v.is_undefined() {
                return Ok(0);
            }
            let cursor: web_sys::IdbCursor = v.dyn_into().map_err(|_| corrupt("cursor"))?;
            let highest = slice_index_of(&cursor.key().map_err(js_error)?)?;
            Ok(highest.saturating_add(1))
        };
        abort_on_error(&tx, body.await)
    }

    async fn slice(&self, arc: DhtArc, index: u64) -> Result<Option<Bytes>, StoreError> {
        self.check_open()?;
        let Ok((s, e)) = slice_key(arc) else {
            return Ok(None);
        };
        let tx = self.tx(&[SLICES], false)?;
        let body = async {
            let st = store(&tx, SLICES)?;
            let v = Req::new(st.get(&slice_id(s, e, index)).map_err(js_error)?)
                .next()
                .await?;
            if v.is_undefined() {
                return Ok(None);
            }
            bytes_of(&v).map(Some)
        };
        abort_on_error(&tx, body.await)
    }

    async fn totals(&self) -> Result<OpTotals, StoreError> {
        let tx = self.tx(&[INFO], false)?;
        let body = async {
            let info = store(&tx, INFO)?;
            let v = Req::new(info.get(&JsValue::from_str(TOTALS_KEY)).map_err(js_error)?)
                .next()
                .await?;
            read_totals(&v)
        };
        abort_on_error(&tx, body.await)
    }
}

impl OpStore for IdbOpStore {
    fn process_incoming_ops(
        &self,
        ops: Vec<MetaOp>,
    ) -> LocalBoxFuture<'_, Result<Vec<StoredOp>, StoreError>> {
        Box::pin(self.process(ops))
    }

    fn retrieve_ops(
        &self,
        op_ids: Vec<OpId>,
    ) -> LocalBoxFuture<'_, Result<Vec<MetaOp>, StoreError>> {
        Box::pin(self.retrieve(op_ids))
    }

    fn filter_out_existing_ops(
        &self,
        op_ids: Vec<OpId>,
    ) -> LocalBoxFuture<'_, Result<Vec<OpId>, StoreError>> {
        Box::pin(self.filter_out(op_ids))
    }

    fn retrieve_op_hashes_in_time_slice(
        &self,
        arc: DhtArc,
        start: Timestamp,
        end: Timestamp,
    ) -> LocalBoxFuture<'_, Result<TimeSliceOpIds, StoreError>> {
        Box::pin(self.time_slice(arc, start, end))
    }

    fn retrieve_op_ids_bounded(
        &self,
        arc: DhtArc,
        start: Timestamp,
        limit_bytes: u32,
    ) -> LocalBoxFuture<'_, Result<BoundedOpIds, StoreError>> {
        Box::pin(self.bounded(arc, start, limit_bytes))
    }

    fn earliest_timestamp_in_arc(
        &self,
        arc: DhtArc,
    ) -> LocalBoxFuture<'_, Result<Option<Timestamp>, StoreError>> {
        Box::pin(self.earliest(arc))
    }

    fn store_slice_hash(
        &self,
        arc: DhtArc,
        slice_index: u64,
        slice_hash: Bytes,
    ) -> LocalBoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.put_slice(arc, slice_index, slice_hash))
    }

    fn slice_hash_count(&self, arc: DhtArc) -> LocalBoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(self.slice_count(arc))
    }

    fn retrieve_slice_hash(
        &self,
        arc: DhtArc,
        slice_index: u64,
    ) -> LocalBoxFuture<'_, Result<Option<Bytes>, StoreError>> {
        Box::pin(self.slice(arc, slice_index))
    }

    fn retrieve_slice_hashes(
        &self,
        arc: DhtArc,
    ) -> LocalBoxFuture<'_, Result<Vec<(u64, Bytes)>, StoreError>> {
        Box::pin(self.slices(arc))
    }

    fn query_totals(&self) -> LocalBoxFuture<'_, Result<OpTotals, StoreError>> {
        Box::pin(self.totals())
    }

    fn close(&self) {
        self.shared
            .gone
            .borrow_mut()
            .get_or_insert(StoreError::Closed);
        self.db.close();
    }
}

// ---------------------------------------------------------------------------------------------
// schema

/// Brings a database from schema `old` to `new` inside the `versionchange` transaction `tx`,
/// one step per version, so any older database reaches the current layout. A new version adds
/// a `n => step_n(db, tx)?` arm (new stores via `db`, new indexes via
/// `tx.object_store(..)?.create_index..`, data rewrites via cursors on `tx`) and bumps
/// [`SCHEMA_VERSION`]; released steps never change.
///
/// # Errors
/// The DOMException of a failed step, or a message for an unknown version; the caller then
/// aborts the transaction and the open fails.
pub fn upgrade(db: &IdbDatabase, tx: &IdbTransaction, old: u32, new: u32) -> Result<(), JsValue> {
    let _ = tx; // used by later steps
    for version in old.saturating_add(1)..=new {
        match version {
            1 => schema_v1(db)?,
            v => {
                return Err(JsValue::from_str(&format!(
                    "no upgrade step to op store schema version {v}"
                )));
            }
        }
    }
    Ok(())
}

fn schema_v1(db: &IdbDatabase) -> Result<(), JsValue> {
    db.create_object_store(OPS)?;
    let params = IdbObjectStoreParameters::new();
    params.set_key_path(&JsValue::from_str("i"));
    let meta = db.create_object_store_with_optional_parameters(META, &params)?;
    meta.create_index_with_str_sequence(IDX_TIME, &str_array(&["h", "o"]))?;
    meta.create_index_with_str_sequence(IDX_SECTOR_TIME, &str_array(&["s", "h", "o"]))?;
    meta.create_index_with_str_sequence(IDX_STORED, &str_array(&["ah", "al"]))?;
    db.create_object_store(SLICES)?;
    db.create_object_store(INFO)?;
    Ok(())
}

async fn open_database(name: &str) -> Result<IdbDatabase, StoreError> {
    let req: IdbOpenDbRequest = factory()?
        .open_with_u32(name, SCHEMA_VERSION)
        .map_err(js_error)?;
    let upgrade_error: Rc<RefCell<Option<StoreError>>> = Rc::new(RefCell::new(None));
    let (r, ue) = (req.clone(), upgrade_error.clone());
    let on_upgrade =
        Closure::<dyn FnMut(IdbVersionChangeEvent)>::new(move |ev: IdbVersionChangeEvent| {
            let old = ev.old_version() as u32;
            let new = ev.new_version().map_or(SCHEMA_VERSION, |v| v as u32);
            let tx = r.transaction();
            let res = match (r.result().map(JsCast::dyn_into::<IdbDatabase>), &tx) {
                (Ok(Ok(db)), Some(tx)) => upgrade(&db, tx, old, new),
                _ => Err(JsValue::from_str("no database in upgradeneeded")),
            };
            if let Err(e) = res {
                *ue.borrow_mut() = Some(StoreError::Backend(format!(
                    "upgrading op store schema {old} -> {new} failed: {}",
                    describe(&e)
                )));
                if let Some(tx) = tx {
                    let _ = tx.abort();
                }
            }
        });
    req.set_onupgradeneeded(Some(on_upgrade.as_ref().unchecked_ref()));
    let stream = Req::new(req.clone().unchecked_into());
    let (s, n) = (stream.state.clone(), name.to_string());
    let on_blocked = Closure::<dyn FnMut()>::new(move || {
        push(&s, Err(StoreError::Blocked { db: n.clone() }));
    });
    req.set_onblocked(Some(on_blocked.as_ref().unchecked_ref()));

    let result = stream.next().await;
    req.set_onblocked(None);
    drop(stream);
    match result {
        Ok(v) => {
            req.set_onupgradeneeded(None);
            v.dyn_into::<IdbDatabase>()
                .map_err(|_| corrupt("open result"))
        }
        Err(e @ StoreError::Blocked { .. }) => {
            // The request stays pending: if the other tab gives way later, the upgrade still
            // runs (so the version is never bumped without the schema; the handler must stay
            // alive for that) and the open succeeds, and that connection is closed at once
            // instead of leaking. One small closure pair is leaked per blocked open.
            on_upgrade.forget();
            let r = req.clone();
            let late = Closure::once_into_js(move || {
                if let Ok(db) = r.result().map(JsCast::unchecked_into::<IdbDatabase>) {
                    db.close();
                }
            });
            req.set_onsuccess(Some(late.unchecked_ref()));
            Err(e)
        }
        Err(e) => {
            req.set_onupgradeneeded(None);
            Err(upgrade_error.borrow_mut().take().unwrap_or(e))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// records and keys

/// The `meta` record of an op.
struct MetaRec {
    op_id: OpId,
    loc: u32,
    created_at: Timestamp,
    stored_at: Timestamp,
    len: u32,
}

impl MetaRec {
    fn write(p: &PreparedOp, stored_at: Timestamp) -> Result<Object, StoreError> {
        let o = Object::new();
        let (h, l) = split_i64(p.created_at.as_micros());
        let (ah, al) = split_i64(stored_at.as_micros());
        set(&o, "i", &id_key(&p.op_id))?;
        set(&o, "l", &JsValue::from(p.loc))?;
        set(&o, "s", &JsValue::from(p.loc >> SECTOR_SHIFT))?;
        set(&o, "h", &JsValue::from(h))?;
        set(&o, "o", &JsValue::from(l))?;
        set(&o, "ah", &JsValue::from(ah))?;
        set(&o, "al", &JsValue::from(al))?;
        set(&o, "n", &JsValue::from(p.len()))?;
        Ok(o)
    }

    fn read(v: &JsValue) -> Result<MetaRec, StoreError> {
        let num = |k: &str| -> Result<f64, StoreError> {
            Reflect::get(v, &JsValue::from_str(k))
                .ok()
                .and_then(|x| x.as_f64())
                .ok_or_else(|| corrupt("meta record"))
        };
        let op_id = Reflect::get(v, &JsValue::from_str("i"))
            .ok()
            .and_then(|x| x.dyn_into::<Uint8Array>().ok())
            .map(|a| OpId::from_bytes(a.to_vec()))
            .ok_or_else(|| corrupt("meta record id"))?;
        let u32_of = |f: f64| to_u32(f).ok_or_else(|| corrupt("meta record number"));
        Ok(MetaRec {
            op_id,
            loc: u32_of(num("l")?)?,
            created_at: join_i64(num("h")?, num("o")?)?,
            stored_at: join_i64(num("ah")?, num("al")?)?,
            len: u32_of(num("n")?)?,
        })
    }
}

fn id_key(id: &OpId) -> Uint8Array {
    Uint8Array::from(id.as_bytes())
}

/// i64 as (signed high 32 bits, unsigned low 32 bits): exact and order-preserving as f64s.
fn split_i64(v: i64) -> (f64, f64) {
    (f64::from((v >> 32) as i32), f64::from(v as u32))
}

fn join_i64(h: f64, l: f64) -> Result<Timestamp, StoreError> {
    let bad = || corrupt("timestamp");
    if !(h.fract() == 0.0 && h >= f64::from(i32::MIN) && h <= f64::from(i32::MAX)) {
        return Err(bad());
    }
    let l = to_u32(l).ok_or_else(bad)?;
    Ok(Timestamp::from_micros(((h as i64) << 32) | i64::from(l)))
}

fn to_u32(f: f64) -> Option<u32> {
    (f.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&f)).then_some(f as u32)
}

fn slice_id(s: u32, e: u32, index: u64) -> JsValue {
    arr(&[
        f64::from(s),
        f64::from(e),
        f64::from((index >> 32) as u32),
        f64::from(index as u32),
    ])
    .into()
}

fn slice_range(s: u32, e: u32) -> Result<IdbKeyRange, StoreError> {
    key_range(
        &arr(&[f64::from(s), f64::from(e)]),
        &arr(&[f64::from(s), f64::from(e), f64::INFINITY]),
    )
}

fn slice_index_of(key: &JsValue) -> Result<u64, StoreError> {
    let a: &Array = key.dyn_ref().ok_or_else(|| corrupt("slice key"))?;
    let part = |i| {
        a.get(i)
            .as_f64()
            .and_then(to_u32)
            .ok_or_else(|| corrupt("slice key"))
    };
    Ok((u64::from(part(2)?) << 32) | u64::from(part(3)?))
}

fn read_totals(v: &JsValue) -> Result<OpTotals, StoreError> {
    if v.is_undefined() {
        return Ok(OpTotals::default());
    }
    let num = |k: &str| {
        Reflect::get(v, &JsValue::from_str(k))
            .ok()
            .and_then(|x| x.as_f64())
            .filter(|f| f.fract() == 0.0 && *f >= 0.0)
            .map(|f| f as u64)
            .ok_or_else(|| corrupt("totals"))
    };
    Ok(OpTotals {
        op_count: num("c")?,
        op_bytes: num("b")?,
    })
}

fn write_totals(t: &OpTotals) -> Result<Object, StoreError> {
    let o = Object::new();
    set(&o, "c", &JsValue::from(t.op_count as f64))?;
    set(&o, "b", &JsValue::from(t.op_bytes as f64))?;
    Ok(o)
}

fn bytes_of(v: &JsValue) -> Result<Bytes, StoreError> {
    v.dyn_ref::<Uint8Array>()
        .map(|a| Bytes::from(a.to_vec()))
        .ok_or_else(|| corrupt("binary value"))
}

/// Sectors (`loc >> 23`) an arc touches, each once.
fn arc_sectors(arc: DhtArc) -> Vec<u32> {
    match arc {
        DhtArc::Empty => Vec::new(),
        DhtArc::Arc(s, e) => {
            let (a, b) = (s >> SECTOR_SHIFT, e >> SECTOR_SHIFT);
            if s <= e {
                (a..=b).collect()
            } else if a > b {
                (a..SECTORS).chain(0..=b).collect()
            } else {
                (0..SECTORS).collect()
            }
        }
    }
}

fn arr(xs: &[f64]) -> Array {
    xs.iter().map(|x| JsValue::from_f64(*x)).collect()
}

fn str_array(xs: &[&str]) -> JsValue {
    xs.iter()
        .map(|x| JsValue::from_str(x))
        .collect::<Array>()
        .into()
}

/// `[lower, upper)`.
fn key_range(lower: &Array, upper: &Array) -> Result<IdbKeyRange, StoreError> {
    IdbKeyRange::bound_with_lower_open_and_upper_open(lower, upper, false, true).map_err(js_error)
}

fn set(o: &Object, k: &str, v: &JsValue) -> Result<(), StoreError> {
    Reflect::set(o, &JsValue::from_str(k), v)
        .map(drop)
        .map_err(js_error)
}

fn store(tx: &IdbTransaction, name: &str) -> Result<IdbObjectStore, StoreError> {
    tx.object_store(name).map_err(js_error)
}

fn factory() -> Result<IdbFactory, StoreError> {
    Reflect::get(&js_sys::global(), &JsValue::from_str("indexedDB"))
        .ok()
        .and_then(|f| f.dyn_into::<IdbFactory>().ok())
        .ok_or_else(|| {
            StoreError::Backend(
                "IndexedDB is not available here (private mode, or a sandboxed frame?)".into(),
            )
        })
}

/// Asks for persistent storage in the background; records the browser's answer.
fn request_persistence(answer: Rc<Cell<Option<bool>>>) {
    let call = || -> Option<js_sys::Promise> {
        let nav = Reflect::get(&js_sys::global(), &JsValue::from_str("navigator")).ok()?;
        let storage = Reflect::get(&nav, &JsValue::from_str("storage")).ok()?;
        let persist: js_sys::Function = Reflect::get(&storage, &JsValue::from_str("persist"))
            .ok()?
            .dyn_into()
            .ok()?;
        persist.call0(&storage).ok()?.dyn_into().ok()
    };
    if let Some(p) = call() {
        wasm_bindgen_futures::spawn_local(async move {
            let r = wasm_bindgen_futures::JsFuture::from(p).await;
            answer.set(r.ok().and_then(|v| v.as_bool()));
        });
    }
}

// ---------------------------------------------------------------------------------------------
// errors

fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!(
        "corrupt or unexpected {what} in the op store database"
    ))
}

/// A DOMException (from a request, a transaction or a throw) as a [`StoreError`].
pub fn dom_error(e: &DomException) -> StoreError {
    let (name, message) = (e.name(), e.message());
    match name.as_str() {
        "QuotaExceededError" => StoreError::QuotaExceeded(message),
        "VersionError" => StoreError::Backend(format!(
            "the op store database is newer than this code (schema {SCHEMA_VERSION}): \
             reload to get the newer code ({message})"
        )),
        _ => StoreError::Backend(format!("{name}: {message}")),
    }
}

fn js_error(v: JsValue) -> StoreError {
    match v.dyn_ref::<DomException>() {
        Some(e) => dom_error(e),
        None => StoreError::Backend(describe(&v)),
    }
}

fn describe(v: &JsValue) -> String {
    if let Some(e) = v.dyn_ref::<DomException>() {
        return format!("{}: {}", e.name(), e.message());
    }
    if let Some(e) = v.dyn_ref::<js_sys::Error>() {
        return String::from(e.message());
    }
    v.as_string().unwrap_or_else(|| format!("{v:?}"))
}

fn abort_on_error<T>(tx: &IdbTransaction, r: Result<T, StoreError>) -> Result<T, StoreError> {
    if r.is_err() {
        // Nothing of a failed call may commit. Throws if already finished: nothing to undo.
        let _ = tx.abort();
    }
    r
}

// ---------------------------------------------------------------------------------------------
// request and transaction futures

#[wasm_bindgen]
extern "C" {
    /// An `IDBDatabase` seen through the `transaction(names, mode, options)` overload, which
    /// web-sys only has behind `web_sys_unstable_apis`.
    type DbWithOptions;

    #[wasm_bindgen(method, catch, js_name = transaction)]
    fn transaction(
        this: &DbWithOptions,
        names: &Array,
        mode: &str,
        options: &Object,
    ) -> Result<IdbTransaction, JsValue>;
}

fn transaction_with_options(
    db: &IdbDatabase,
    names: &Array,
    mode: &str,
    options: &Object,
) -> Result<IdbTransaction, JsValue> {
    db.unchecked_ref::<DbWithOptions>()
        .transaction(names, mode, options)
}

#[derive(Default)]
struct ReqState {
    queue: VecDeque<Result<JsValue, StoreError>>,
    waker: Option<Waker>,
}

fn push(state: &Rc<RefCell<ReqState>>, v: Result<JsValue, StoreError>) {
    let mut st = state.borrow_mut();
    st.queue.push_back(v);
    if let Some(w) = st.waker.take() {
        w.wake();
    }
}

/// The events of one request as a stream of results: one for a plain request, one per step
/// for a cursor. Results are picked up in a microtask of the event, while the transaction is
/// still active, so the next request can be placed from async code.
struct Req {
    req: IdbRequest,
    state: Rc<RefCell<ReqState>>,
    _ok: Closure<dyn FnMut()>,
    _err: Closure<dyn FnMut()>,
}

impl Req {
    fn new(req: IdbRequest) -> Req {
        let state = Rc::new(RefCell::new(ReqState::default()));
        let (s, r) = (state.clone(), req.clone());
        let ok = Closure::<dyn FnMut()>::new(move || push(&s, r.result().map_err(js_error)));
        let (s, r) = (state.clone(), req.clone());
        let err = Closure::<dyn FnMut()>::new(move || {
            let e = match r.error() {
                Ok(Some(e)) => dom_error(&e),
                _ => StoreError::Backend("IndexedDB request failed".into()),
            };
            push(&s, Err(e));
        });
        req.set_onsuccess(Some(ok.as_ref().unchecked_ref()));
        req.set_onerror(Some(err.as_ref().unchecked_ref()));
        Req {
            req,
            state,
            _ok: ok,
            _err: err,
        }
    }

    fn next(&self) -> impl Future<Output = Result<JsValue, StoreError>> + '_ {
        poll_fn(move |cx| {
            let mut st = self.state.borrow_mut();
            match st.queue.pop_front() {
                Some(v) => Poll::Ready(v),
                None => {
                    st.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
    }
}

impl Drop for Req {
    fn drop(&mut self) {
        self.req.set_onsuccess(None);
        self.req.set_onerror(None);
    }
}

/// Resolves on the transaction's `complete` (Ok) or `abort` (the transaction's error).
struct TxDone {
    tx: IdbTransaction,
    state: Rc<RefCell<ReqState>>,
    _complete: Closure<dyn FnMut()>,
    _abort: Closure<dyn FnMut()>,
}

impl TxDone {
    fn new(tx: &IdbTransaction) -> TxDone {
        let state = Rc::new(RefCell::new(ReqState::default()));
        let s = state.clone();
        let complete = Closure::<dyn FnMut()>::new(move || push(&s, Ok(JsValue::UNDEFINED)));
        let (s, t) = (state.clone(), tx.clone());
        let abort = Closure::<dyn FnMut()>::new(move || {
            let e = match t.error() {
                Some(e) => dom_error(&e),
                None => StoreError::Backend("IndexedDB transaction aborted".into()),
            };
            push(&s, Err(e));
        });
        tx.set_oncomplete(Some(complete.as_ref().unchecked_ref()));
        tx.set_onabort(Some(abort.as_ref().unchecked_ref()));
        TxDone {
            tx: tx.clone(),
            state,
            _complete: complete,
            _abort: abort,
        }
    }

    async fn wait(self) -> Result<(), StoreError> {
        poll_fn(|cx| {
            let mut st = self.state.borrow_mut();
            match st.queue.pop_front() {
                Some(v) => Poll::Ready(v.map(drop)),
                None => {
                    st.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }
}

impl Drop for TxDone {
    fn drop(&mut self) {
        self.tx.set_oncomplete(None);
        self.tx.set_onabort(None);
    }
}
