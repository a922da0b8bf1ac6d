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
//! # Database layout (schema version 3)
//! One database per agent and space, named `fennec-ops:<space b64url>:<agent b64url>`.
//!
//! | object store | key | value | indexes |
//! |---|---|---|---|
//! | `packs`  | `[highest stored_at, first op key]` | `{d: the ops back to back, a: Float64Array of stored_at, k: [op key], st: [[sector, created_at, op key]]}` | `id` on `k` (multiEntry, unique), `sector_time` on `st` (multiEntry) |
//! | `slice_batches` | generated (1, 2, …) | `{m: Uint32Array, 5 per hash: arc start, arc end, index hi, index lo, end of the hash in d; d: the hashes back to back}` | – |
//! | `info`   | `"totals"` | `{c: op count, b: op bytes}` | – |
//!
//! An *op key* is binary: op id (32) ‖ encoded length u32 (4) ‖ `created_at` i64 (8).
//! Integers in it are big-endian, and `created_at` has its sign bit flipped, so the key holds
//! the exact i64 in byte order. Op ids are 32 bytes, so op keys sort by op id. The other
//! numbers are plain f64s (µs, cheap to store and to read back): exact up to 2^53 µs (the year
//! 2255), and beyond that still monotonic, so range queries widen their bounds to the f64
//! neighbours and filter on the exact `created_at` from the op key. Stored-at stamps are
//! wall-clock µs and therefore exact.
//!
//! Why packs: IndexedDB's cost is per record, not per index entry (`npm run bench -- records`:
//! 16 ops per record wrote 4.3x the ops per second of one per record, with 8 tabs writing at
//! once; dropping an index changed nothing). So a write of N ops adds ⌈N / [`OPS_PER_PACK`]⌉
//! records, each with one `id` and one `sector_time` entry per op. The op key in both index
//! entries carries id, location (computed from the id by the [`Locator`]), size and
//! `created_at`, so narrow time slices and "earliest" read index keys alone (key cursors); a
//! query over a good part of all ops (the model's rebuild at join) scans the packs instead,
//! as a cursor step costs about as much as reading 8 ops. An op already held is detected by
//! the pack's `add` failing on the unique `id` index (`ConstraintError`); only then are that
//! pack's ops looked up one by one. The primary key orders packs by stored-at, which serves
//! "new ops since" as a key range. One read of an op by id is an `id` index lookup and a `get`
//! of its pack (each pack once per call), or, for many ids, the scan; every op returned is
//! re-checked against its id.
//! Time slices read `sector_time` one range per sector the arc touches (512 sectors of 2^23
//! locations, as in Kitsune2), all at once.
//!
//! Why slice batches: the DHT model writes its full-slice hashes (one per sector and slice
//! holding ops: 22 587 for 30 000 ops, 32 247 for 100 000) in one call, and reads them all at
//! load. One record per hash made that write 0.7 s of `put`s and the read 0.65–1.2 s, and a
//! closing page's write of 22 587 records was cut in 3 of 8 closes (`npm run bench -- close`;
//! plain IndexedDB, 100 small puts always landed). Each write is now one record; a read
//! joins every record, a later hash of an `(arc, index)` replacing an earlier one, and after
//! `SLICE_BATCHES_BEFORE_MERGE` (32) records a handle's next write merges them into one.
//!
//! Schema 1 (one record per op, key the op key, value `{d, t, s, a}`, indexes `sector_time`
//! on `[s, t]` and `stored` on `a`) is rewritten into packs by the upgrade ([`upgrade`]);
//! schema 2's `slices` (key `[arc start, arc end, index hi, index lo]`, value the hash) into
//! one slice batch.
//!
//! The per-op loops of writes and bulk reads run in `idb_glue.js` (one JS↔wasm crossing per
//! call, with packed buffers, instead of several per op); the rules stay here.
//!
//! # Transactions
//! Every call is one transaction. Writes use `durability: "strict"` by default (the browser
//! flushes to disk before `complete`); a call resolves only after `complete` (reads too, so
//! nothing of a resolved call is still running), and any error aborts the whole transaction. The stored-at stamps of a write and the bookmark of a read are
//! taken in the same synchronous step that creates their transaction, and IndexedDB runs
//! overlapping transactions in creation order, so a bookmark never passes an op it did not see.
//!
//! One handle per database per page is assumed. Several tabs may each hold one (the stored-at
//! clock of each is wall-clock based, so their stamps interleave sensibly), but "new ops
//! since" is exact only for one writing handle: with two, one's pack may straddle the other's
//! stamps.

use bytes::Bytes;
use futures::future::LocalBoxFuture;
use js_sys::{Array, Float64Array, Object, Promise, Reflect, Uint8Array, Uint32Array};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::rc::Rc;
use std::task::{Poll, Waker};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue, prelude::wasm_bindgen};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    DomException, IdbCursor, IdbCursorDirection, IdbCursorWithValue, IdbDatabase, IdbFactory,
    IdbIndexParameters, IdbKeyRange, IdbObjectStore, IdbOpenDbRequest, IdbRequest, IdbTransaction,
    IdbVersionChangeEvent,
};

use crate::api::{
    BoundedOpIds, HeldOpsQuery, MetaOp, OpStore, OpTotals, SectorSliceHash, StoreError,
    TimeSliceOpIds, held_op_ids_by_time_slices,
};
use crate::hash::{HashMap, HashSet};
use crate::model::arc::{DhtArc, SECTORS, sector_of};
use crate::model::id::{AgentId, Locator, OpId, SpaceId};
use crate::model::op::{OP_ID_BYTES, StoredOp, op_id_of};
use crate::model::time::Timestamp;
use crate::sort;
use crate::store::{
    BoundedAcc, PreparedOp, StoredAtClock, check_slice_hash, dedup_ids, prepare_batch, slice_key,
};

/// Schema version this code writes; [`upgrade`] brings any older database up to it.
pub const SCHEMA_VERSION: u32 = 3;

/// Ops per pack record at most. `npm run bench -- records` (8 tabs writing at once): 4 per
/// record gave 2.0x the ops/s of one, 16 gave 4.3x, 64 gave 4.4x; a read by id loads its whole
/// pack, so the smallest size near the plateau.
pub const OPS_PER_PACK: u32 = 16;

const PACKS: &str = "packs";
const SLICE_BATCHES: &str = "slice_batches";
/// `slice_batches` records a handle lets accumulate (one per model write) before its next
/// write merges them into one; never while the page is closing
/// ([`OpStore::abandon_writes`]), whose write must be one `add`.
const SLICE_BATCHES_BEFORE_MERGE: u32 = 32;
const INFO: &str = "info";
const IDX_ID: &str = "id";
const IDX_SECTOR_TIME: &str = "sector_time";
const TOTALS_KEY: &str = "totals";
/// Op key: op id (32) ‖ encoded length (4) ‖ created_at (8).
const PK_BYTES: usize = 44;
/// Numbers per op handed to `writePacks`: sector, created_at, stored_at.
const META_NUMS: usize = 3;

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
    /// Resolves with the browser's answer to the persistence request (see
    /// [`IdbOpStore::persistence`]).
    persist_answer: futures::future::Shared<LocalBoxFuture<'static, Option<bool>>>,
    _on_versionchange: Closure<dyn FnMut()>,
    _on_close: Closure<dyn FnMut()>,
}

struct Shared {
    name: String,
    /// Why the handle no longer works, once it does not.
    gone: RefCell<Option<StoreError>>,
    /// Op writes under way, each with a number of its own ([`OpStore::abandon_writes`]; the
    /// space hands the store one write at a time, so this is short).
    writes: RefCell<Vec<(u64, IdbTransaction)>>,
    next_write: Cell<u64>,
    /// `slice_batches` records as of this handle's last read or write of them (0 before).
    slice_batches: Cell<u32>,
    /// The page is closing ([`OpStore::abandon_writes`]): model writes do not merge.
    closing: Cell<bool>,
}

/// Keeps an op write's transaction in [`Shared::writes`] while its future lives.
struct WriteUnderWay<'a> {
    shared: &'a Shared,
    number: u64,
}

impl<'a> WriteUnderWay<'a> {
    fn new(shared: &'a Shared, tx: &IdbTransaction) -> Self {
        let number = shared.next_write.get();
        shared.next_write.set(number + 1);
        shared.writes.borrow_mut().push((number, tx.clone()));
        WriteUnderWay { shared, number }
    }
}

impl Drop for WriteUnderWay<'_> {
    fn drop(&mut self) {
        self.shared
            .writes
            .borrow_mut()
            .retain(|(n, _)| *n != self.number);
    }
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
        if db.object_store_names().contains("meta") {
            // The layout of fennec before its first release (ops and meta in two stores).
            db.close();
            return Err(StoreError::Backend(format!(
                "database {name} has a pre-release op store layout; delete it \
                 (IdbOpStore::delete / OpStore.delete) and open again"
            )));
        }
        let shared = Rc::new(Shared {
            name,
            gone: RefCell::new(None),
            writes: RefCell::default(),
            next_write: Cell::new(0),
            slice_batches: Cell::new(0),
            closing: Cell::new(false),
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

        let persisted = Rc::new(Cell::new(None));
        let persist_answer = request_persistence(persisted.clone());
        let store = IdbOpStore {
            db,
            shared,
            options,
            clock: StoredAtClock::default(),
            persisted,
            persist_answer,
            _on_versionchange: on_versionchange,
            _on_close: on_close,
        };
        let last = store.last_stored_at().await?;
        store.clock.observe(last);
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

    /// Resolves with the browser's answer to `navigator.storage.persist()` once it gave it
    /// (then [`IdbOpStore::persisted`] holds the same): `Some(granted)`, or `None` where the
    /// API is missing or the request failed. Any number of callers may wait.
    pub fn persistence(&self) -> impl Future<Output = Option<bool>> + 'static {
        self.persist_answer.clone()
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
        let tx = self.tx(&[PACKS], false)?;
        let done = TxDone::new(&tx);
        let body = async {
            let req = store(&tx, PACKS)?
                .open_key_cursor_with_range_and_direction(&JsValue::NULL, IdbCursorDirection::Prev)
                .map_err(js_error)?;
            let v = Req::new(req).next().await?;
            if v.is_null() || v.is_undefined() {
                return Ok(None);
            }
            let cursor: IdbCursor = v.dyn_into().map_err(|_| corrupt("cursor"))?;
            let key = cursor.key().map_err(js_error)?;
            let top = key.dyn_ref::<Array>().map(|a| a.get(0));
            read_stamp(&top.ok_or_else(|| corrupt("pack key"))?).map(Some)
        };
        self.end_read(&tx, done, body.await).await
    }

    /// Ends a read: aborts its transaction on error, else waits for it to finish, so that
    /// nothing of a call that resolved is still running (a `close` then takes effect at once,
    /// and `delete` right after it is not blocked by our own connection).
    async fn end_read<T>(
        &self,
        tx: &IdbTransaction,
        done: TxDone,
        r: Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let v = abort_on_error(tx, r)?;
        done.wait()
            .await
            .map_err(|e| self.check_open().err().unwrap_or(e))?;
        Ok(v)
    }

    async fn process(&self, ops: Vec<MetaOp>) -> Result<Vec<StoredOp>, StoreError> {
        self.check_open()?;
        let prepared = prepare_batch(ops, &self.options.locator)?;
        if prepared.is_empty() {
            return Ok(Vec::new());
        }
        // The batch for writePacks: data back to back, one key and one meta entry per op.
        let n = prepared.len();
        let mut data = Vec::with_capacity(prepared.iter().map(|p| p.data.len()).sum());
        let mut offs = Vec::with_capacity(n + 1);
        let mut keys = Vec::with_capacity(n * PK_BYTES);
        let mut meta: Vec<f64> = Vec::with_capacity(n * META_NUMS);
        offs.push(0u32);
        // Stamps and transaction in one synchronous step (see the module docs).
        let now = crate::browser::clock::now();
        for p in &prepared {
            data.extend_from_slice(&p.data);
            offs.push(u32::try_from(data.len()).map_err(|_| {
                StoreError::Invalid("a batch of more than 4 GiB of op data".into())
            })?);
            keys.extend_from_slice(&primary_key(p));
            meta.push(f64::from(sector_of(p.loc)));
            meta.push(p.created_at.as_micros() as f64);
            meta.push(self.clock.stamp(now).as_micros() as f64);
        }
        let tx = self.tx(&[PACKS, INFO], true)?;
        let _under_way = WriteUnderWay::new(&self.shared, &tx);
        let done = TxDone::new(&tx);
        let written = write_packs(
            &tx,
            &Uint8Array::from(&data[..]),
            &Uint32Array::from(&offs[..]),
            &Uint8Array::from(&keys[..]),
            &Float64Array::from(&meta[..]),
            OPS_PER_PACK,
        );
        drop((data, keys, meta));
        let fresh = JsFuture::from(written).await;
        let committed = done
            .wait()
            .await
            .map_err(|e| self.check_open().err().unwrap_or(e));
        let fresh = match (fresh, committed) {
            (Ok(f), Ok(())) => f.dyn_into::<Uint8Array>().map_err(|_| corrupt("flags"))?,
            // Our own finding (a corrupt totals record) says more than the abort it caused.
            (Err(e), _) if !e.is_instance_of::<DomException>() => return Err(js_error(e)),
            (_, Err(e)) => return Err(e),
            (Err(e), Ok(())) => return Err(js_error(e)),
        };
        if fresh.length() as usize != n {
            return Err(corrupt("flags"));
        }
        let fresh = fresh.to_vec();
        Ok(prepared
            .iter()
            .zip(fresh)
            .filter(|(_, f)| *f == 1)
            .map(|(p, _)| p.stored())
            .collect())
    }

    async fn retrieve(&self, op_ids: Vec<OpId>) -> Result<Vec<MetaOp>, StoreError> {
        let op_ids = dedup_ids(op_ids);
        let tx = self.tx(&[PACKS, INFO], false)?;
        let done = TxDone::new(&tx);
        let body = async {
            let got = JsFuture::from(read_ids(
                &tx,
                &Uint8Array::from(&id_bytes(&op_ids)[..]),
                true,
            ))
            .await
            .map_err(js_error)?;
            let got: Array = got.dyn_into().map_err(|_| corrupt("values"))?;
            let data = Bytes::from(
                got.get(0)
                    .dyn_into::<Uint8Array>()
                    .map_err(|_| corrupt("values"))?
                    .to_vec(),
            );
            let offs = got
                .get(1)
                .dyn_into::<Uint32Array>()
                .map_err(|_| corrupt("values"))?
                .to_vec();
            let keys = packed_keys(&got.get(2))?;
            if keys.len() / PK_BYTES + 1 != offs.len() {
                return Err(corrupt("values"));
            }
            // Packs (or a scan) also hold ops nobody asked for, skipped by their key; every op
            // returned is re-identified by its hash, so a damaged record is never served under
            // its id.
            let wanted: HashSet<&[u8]> = op_ids.iter().map(OpId::as_bytes).collect();
            let mut found: HashMap<OpId, Bytes> =
                HashMap::with_capacity_and_hasher(op_ids.len(), Default::default());
            for (w, key) in offs.windows(2).zip(keys.chunks_exact(PK_BYTES)) {
                let (a, b) = (w[0] as usize, w[1] as usize);
                if a > b || b > data.len() {
                    return Err(corrupt("values"));
                }
                if !wanted.contains(&key[..OP_ID_BYTES]) {
                    continue;
                }
                let op_data = data.slice(a..b);
                let id = op_id_of(&op_data);
                if wanted.contains(id.as_bytes()) {
                    found.insert(id, op_data);
                }
            }
            Ok(op_ids
                .into_iter()
                .filter_map(|op_id| {
                    let op_data = found.remove(&op_id)?;
                    Some(MetaOp { op_id, op_data })
                })
                .collect())
        };
        self.end_read(&tx, done, body.await).await
    }

    async fn filter_out(&self, op_ids: Vec<OpId>) -> Result<Vec<OpId>, StoreError> {
        let op_ids = dedup_ids(op_ids);
        let tx = self.tx(&[PACKS, INFO], false)?;
        let done = TxDone::new(&tx);
        let body = async {
            let ids = id_bytes(&op_ids);
            let flags = JsFuture::from(read_ids(&tx, &Uint8Array::from(&ids[..]), false))
                .await
                .map_err(js_error)?;
            let flags = flags
                .dyn_into::<Uint8Array>()
                .map_err(|_| corrupt("flags"))?
                .to_vec();
            if flags.len() != ids.len() / OP_ID_BYTES {
                return Err(corrupt("flags"));
            }
            let held: HashSet<&[u8]> = ids
                .chunks_exact(OP_ID_BYTES)
                .zip(flags)
                .filter(|(_, f)| *f == 1)
                .map(|(id, _)| id)
                .collect();
            Ok(op_ids
                .into_iter()
                .filter(|id| !held.contains(id.as_bytes()))
                .collect())
        };
        self.end_read(&tx, done, body.await).await
    }

    /// [`Self::in_time_ranges`] for each of `ranges`, as time-slice answers.
    async fn time_slices(
        &self,
        ranges: &[(DhtArc, Timestamp, Timestamp)],
    ) -> Result<Vec<TimeSliceOpIds>, StoreError> {
        let found = self.in_time_ranges(ranges).await?;
        Ok(found
            .into_iter()
            .map(|recs| TimeSliceOpIds {
                total_bytes: recs.iter().map(|r| u64::from(r.2)).sum(),
                op_ids: recs.into_iter().map(|r| r.1).collect(),
            })
            .collect())
    }

    async fn op_times(
        &self,
        arc: DhtArc,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<StoredOp>, StoreError> {
        let recs = self.in_time_ranges(&[(arc, start, end)]).await?;
        Ok(recs
            .into_iter()
            .flatten()
            .map(|(created_at, op_id, _)| StoredOp { op_id, created_at })
            .collect())
    }

    /// For each `(arc, start, end)` of `ranges`, `(created_at, id, encoded length)` of the ops
    /// in `arc` created in `[start, end)`, sorted; all in one transaction: one `sector_time`
    /// range per sector each range's arc touches, read by key cursors or, when they hold a
    /// good part of all ops, by one scan of the packs (`timeKeys` in the glue). Index keys are
    /// `[sector, created_at, op key]`; an empty array sorts after any op key, so
    /// `[sector, end, []]` bounds every key up to `end`. Each key found is given to every
    /// range that holds it.
    async fn in_time_ranges(
        &self,
        ranges: &[(DhtArc, Timestamp, Timestamp)],
    ) -> Result<Vec<Vec<(Timestamp, OpId, u32)>>, StoreError> {
        self.check_open()?;
        let wanted =
            |(arc, start, end): &(DhtArc, Timestamp, Timestamp)| !arc.is_empty() && start < end;
        let mut found = vec![Vec::new(); ranges.len()];
        if !ranges.iter().any(wanted) {
            return Ok(found);
        }
        let tx = self.tx(&[PACKS, INFO], false)?;
        let done = TxDone::new(&tx);
        let body = async {
            let (lowers, uppers) = (Array::new(), Array::new());
            for (arc, start, end) in ranges.iter().filter(|r| wanted(r)) {
                // Inclusive f64 bounds hold every exact value in [start, end); filtered below.
                let (lo, hi) = (start.as_micros() as f64, end.as_micros() as f64);
                for s in arc.sectors() {
                    lowers.push(&arr(&[f64::from(s), lo]));
                    let u = arr(&[f64::from(s), hi]);
                    u.push(&Array::new());
                    uppers.push(&u);
                }
            }
            let keys = JsFuture::from(time_keys(&tx, &lowers, &uppers))
                .await
                .map_err(js_error)?;
            let keys = packed_keys(&keys)?;
            // Each key is checked against the ranges of its own sector only: a diff's batch
            // holds hundreds of ranges, each of one sector.
            let mut by_sector = vec![Vec::new(); SECTORS as usize];
            for (i, (arc, _, _)) in ranges.iter().enumerate().filter(|(_, r)| wanted(r)) {
                for s in arc.sectors() {
                    by_sector[s as usize].push(i);
                }
            }
            for k in keys.chunks_exact(PK_BYTES) {
                let (id, len, created_at) = parse_pk(k)?;
                let loc = self.options.locator.op_loc(&id);
                for &i in &by_sector[sector_of(loc) as usize] {
                    let (arc, start, end) = &ranges[i];
                    if arc.contains(loc) && created_at >= *start && created_at < *end {
                        found[i].push((created_at, id.clone(), len));
                    }
                }
            }
            for recs in &mut found {
                sort::sort_by(recs, |a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
                // Ranges of one read may share sectors: a key read twice is one op.
                recs.dedup_by(|a, b| a.1 == b.1);
            }
            Ok(found)
        };
        self.end_read(&tx, done, body.await).await
    }

    /// A page of held ops of at most `limit` (`space.ops`): one key cursor per sector on
    /// `sector_time`, each from the page's cursor on in its direction, merged by
    /// `(created_at, op_id)` ([`next_head`]) until `limit` ids, so a page reads about
    /// `limit` + 512 index keys however many ops the store holds (the time-slice query read
    /// every id of the rest of the range: 207 ms a page of 50 with 40 000 ops held, against
    /// ~50 ms; `npm run bench -- history`).
    async fn held_page(&self, q: &HeldOpsQuery, limit: usize) -> Result<Vec<OpId>, StoreError> {
        let tx = self.tx(&[PACKS], false)?;
        let done = TxDone::new(&tx);
        let body = async {
            let idx = store(&tx, PACKS)?
                .index(IDX_SECTOR_TIME)
                .map_err(js_error)?;
            let dir = if q.newest_first {
                IdbCursorDirection::Prev
            } else {
                IdbCursorDirection::Next
            };
            let mut sectors = Vec::with_capacity(SECTORS as usize);
            for s in 0..SECTORS {
                let range = held_range(s, q)?;
                let req = idx
                    .open_key_cursor_with_range_and_direction(&range, dir)
                    .map_err(js_error)?;
                sectors.push(SectorKeys::new(req));
            }
            let mut heads = Vec::with_capacity(sectors.len());
            for keys in &mut sectors {
                heads.push(keys.next(q).await?);
            }
            let mut out = Vec::with_capacity(limit.min(1024));
            while out.len() < limit {
                let Some(i) = next_head(&heads, q.newest_first) else {
                    break;
                };
                let Some((_, id)) = heads[i].take() else {
                    break;
                };
                out.push(id);
                if out.len() < limit {
                    heads[i] = sectors[i].next(q).await?;
                }
            }
            Ok(out)
        };
        self.end_read(&tx, done, body.await).await
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
        let bookmark = self.clock.bookmark(crate::browser::clock::now());
        if arc.is_empty() {
            return Ok(acc.finish(bookmark));
        }
        let tx = self.tx(&[PACKS], false)?;
        let done = TxDone::new(&tx);
        let body = async {
            // Packs are keyed by their highest stamp, so those from `start` on hold every op
            // stamped from `start` on (and maybe earlier ones, skipped).
            let start_f = start.as_micros() as f64;
            let range = IdbKeyRange::lower_bound(&arr(&[start_f])).map_err(js_error)?;
            let req = Req::new(
                store(&tx, PACKS)?
                    .open_cursor_with_range(&range)
                    .map_err(js_error)?,
            );
            'packs: loop {
                let v = req.next().await?;
                if v.is_null() || v.is_undefined() {
                    break;
                }
                let cursor: IdbCursorWithValue = v.dyn_into().map_err(|_| corrupt("cursor"))?;
                let (stamps, keys) = pack_index(&cursor.value().map_err(js_error)?)?;
                for (stamp, key) in stamps.into_iter().zip(keys.chunks_exact(PK_BYTES)) {
                    if stamp < start {
                        continue;
                    }
                    let (id, len, created_at) = parse_pk(key)?;
                    let loc = self.options.locator.op_loc(&id);
                    if !acc.offer((&id, created_at), loc, len, stamp) {
                        break 'packs;
                    }
                }
                cursor.continue_().map_err(js_error)?;
            }
            Ok(())
        };
        self.end_read(&tx, done, body.await).await?;
        Ok(acc.finish(bookmark))
    }

    async fn earliest(&self, arc: DhtArc) -> Result<Option<Timestamp>, StoreError> {
        self.check_open()?;
        if arc.is_empty() {
            return Ok(None);
        }
        let tx = self.tx(&[PACKS], false)?;
        let done = TxDone::new(&tx);
        let body = async {
            let sectors = arc.sectors();
            let idx = store(&tx, PACKS)?
                .index(IDX_SECTOR_TIME)
                .map_err(js_error)?;
            let mut cursors = Vec::new();
            for s in sectors {
                let range = key_range(&arr(&[f64::from(s)]), &arr(&[f64::from(s) + 1.0]))?;
                cursors.push(Req::new(
                    idx.open_key_cursor_with_range(&range).map_err(js_error)?,
                ));
            }
            let mut best: Option<Timestamp> = None;
            for req in cursors {
                // The first op in the arc, and any after it under the same (rounded) f64 key,
                // which can differ in the exact created_at beyond 2^53 µs.
                let mut first_t: Option<f64> = None;
                while let Some(step) = SectorTimeStep::next(&req).await? {
                    if first_t.is_some_and(|f| f != step.t) {
                        break;
                    }
                    if arc.contains(self.options.locator.op_loc(&step.id)) {
                        let t = step.created_at;
                        best = Some(best.map_or(t, |b| b.min(t)));
                        first_t = first_t.or(Some(step.t));
                    }
                    step.cursor.continue_().map_err(js_error)?;
                }
            }
            Ok(best)
        };
        self.end_read(&tx, done, body.await).await
    }

    /// Writes every hash of `hashes` (all checked before the transaction starts) as one
    /// `slice_batches` record, or, once [`SLICE_BATCHES_BEFORE_MERGE`] records are known and
    /// the page is not closing, merges every record and these hashes into one.
    async fn put_slices(&self, hashes: Vec<(DhtArc, u64, Bytes)>) -> Result<(), StoreError> {
        self.check_open()?;
        let mut batch = Vec::with_capacity(hashes.len());
        for (arc, index, hash) in hashes {
            let (start, end) = slice_key(arc)?;
            check_slice_hash(&hash)?;
            batch.push(SliceEntry {
                start,
                end,
                index,
                hash,
            });
        }
        let merge = !self.shared.closing.get()
            && self.shared.slice_batches.get() >= SLICE_BATCHES_BEFORE_MERGE;
        let tx = self.tx(&[SLICE_BATCHES], true)?;
        let done = TxDone::new(&tx);
        let r = if merge {
            self.merge_slices(&tx, batch).await
        } else {
            // Issued and committed at once, not when the event loop next turns: this write
            // is also the one made as the page goes away (`pagehide`, hidden:
            // `Space::persist_now`), and Chromium aborted it with the closing page in 4 of 8
            // real tab closes; with `commit()`, none of 16
            // (tests/e2e/persist-on-leave.test.mjs). One record, however many hashes: a
            // closing page's write of 22 587 records was cut in 3 of 8 closes.
            add_slice_batch(&tx, &batch, None)
        };
        let r = r.and_then(|added| commit(&tx).map(|()| added));
        let added = abort_on_error(&tx, r)?;
        done.wait()
            .await
            .map_err(|e| self.check_open().err().unwrap_or(e))?;
        let known = &self.shared.slice_batches;
        let kept = if merge { 0 } else { known.get() };
        known.set(kept + u32::from(added));
        Ok(())
    }

    /// In `tx`: reads every batch, deletes them, and adds one holding their latest hashes
    /// and `batch`'s. Resolves to whether a record was added.
    async fn merge_slices(
        &self,
        tx: &IdbTransaction,
        batch: Vec<SliceEntry>,
    ) -> Result<bool, StoreError> {
        let (mut entries, _, last_key) = read_slice_batches(tx).await?;
        entries.extend(batch);
        add_slice_batch(tx, &latest_slices(entries), last_key.as_ref())
    }

    /// The latest stored hash of each `(arc, index)` whose arc `keep` accepts, sorted by arc
    /// then index. Filtered before the sort: the load asks for the watermark's few hashes
    /// out of ~30 000.
    async fn latest_slices_of(
        &self,
        keep: impl Fn(u32, u32) -> bool,
    ) -> Result<Vec<SliceEntry>, StoreError> {
        let tx = self.tx(&[SLICE_BATCHES], false)?;
        let done = TxDone::new(&tx);
        let r = read_slice_batches(&tx).await;
        let (mut entries, records, _) = self.end_read(&tx, done, r).await?;
        self.shared.slice_batches.set(records);
        entries.retain(|e| keep(e.start, e.end));
        Ok(latest_slices(entries))
    }

    /// The hashes of `arc` (none for an arc that names no sector), by slice index.
    async fn slices(&self, arc: DhtArc) -> Result<Vec<(u64, Bytes)>, StoreError> {
        self.check_open()?;
        let Ok(key) = slice_key(arc) else {
            return Ok(Vec::new());
        };
        let of_arc = self.latest_slices_of(|s, e| (s, e) == key).await?;
        Ok(of_arc.into_iter().map(|e| (e.index, e.hash)).collect())
    }

    /// The sector arcs' hashes, by sector then slice index; other arcs' (the watermark's, or
    /// one a caller stored) are left out.
    async fn sector_slices(&self) -> Result<Vec<SectorSliceHash>, StoreError> {
        self.check_open()?;
        let is_sector = |s, e| DhtArc::Arc(s, e) == DhtArc::of_sectors(sector_of(s), sector_of(s));
        let of_sectors = self.latest_slices_of(is_sector).await?;
        Ok(of_sectors
            .into_iter()
            .map(|e| (sector_of(e.start), e.index, e.hash))
            .collect())
    }

    async fn slice_count(&self, arc: DhtArc) -> Result<u64, StoreError> {
        let highest = self.slices(arc).await?.last().map(|(i, _)| *i);
        Ok(highest.map_or(0, |i| i.saturating_add(1)))
    }

    async fn slice(&self, arc: DhtArc, index: u64) -> Result<Option<Bytes>, StoreError> {
        let all = self.slices(arc).await?;
        Ok(all.into_iter().find(|(i, _)| *i == index).map(|(_, h)| h))
    }

    async fn totals(&self) -> Result<OpTotals, StoreError> {
        let tx = self.tx(&[INFO], false)?;
        let done = TxDone::new(&tx);
        let body = async {
            let info = store(&tx, INFO)?;
            let v = Req::new(info.get(&JsValue::from_str(TOTALS_KEY)).map_err(js_error)?)
                .next()
                .await?;
            read_totals(&v)
        };
        self.end_read(&tx, done, body.await).await
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
        Box::pin(async move {
            let mut one = self.time_slices(&[(arc, start, end)]).await?;
            Ok(one.pop().unwrap_or_default())
        })
    }

    fn retrieve_op_hashes_in_time_slices(
        &self,
        ranges: Vec<(DhtArc, Timestamp, Timestamp)>,
    ) -> LocalBoxFuture<'_, Result<Vec<TimeSliceOpIds>, StoreError>> {
        Box::pin(async move { self.time_slices(&ranges).await })
    }

    fn retrieve_op_times_in_time_range(
        &self,
        arc: DhtArc,
        start: Timestamp,
        end: Timestamp,
    ) -> LocalBoxFuture<'_, Result<Vec<StoredOp>, StoreError>> {
        Box::pin(self.op_times(arc, start, end))
    }

    fn retrieve_held_op_ids(
        &self,
        q: HeldOpsQuery,
    ) -> LocalBoxFuture<'_, Result<Vec<OpId>, StoreError>> {
        Box::pin(async move {
            self.check_open()?;
            // Checked before the totals read: an empty page costs no transaction.
            if q.limit == Some(0) || q.leaves_none() {
                return Ok(Vec::new());
            }
            match q.limit {
                Some(limit) if merge_pays(limit, self.totals().await?.op_count) => {
                    self.held_page(&q, limit).await
                }
                // Every id of the range, or many: one read of the range costs less.
                _ => held_op_ids_by_time_slices(self, &q).await,
            }
        })
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
        Box::pin(self.put_slices(vec![(arc, slice_index, slice_hash)]))
    }

    fn store_slice_hashes(
        &self,
        hashes: Vec<(DhtArc, u64, Bytes)>,
    ) -> LocalBoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.put_slices(hashes))
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

    fn retrieve_sector_slice_hashes(
        &self,
    ) -> LocalBoxFuture<'_, Result<Vec<SectorSliceHash>, StoreError>> {
        Box::pin(self.sector_slices())
    }

    fn query_totals(&self) -> LocalBoxFuture<'_, Result<OpTotals, StoreError>> {
        Box::pin(self.totals())
    }

    fn abandon_writes(&self) {
        self.shared.closing.set(true);
        for (_, tx) in self.shared.writes.borrow().iter() {
            // Throws if it already finished: nothing to undo.
            let _ = tx.abort();
        }
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
    for version in old.saturating_add(1)..=new {
        match version {
            1 => schema_v1(db)?,
            2 => schema_v2(db, tx)?,
            3 => schema_v3(db, tx)?,
            v => {
                return Err(JsValue::from_str(&format!(
                    "no upgrade step to op store schema version {v}"
                )));
            }
        }
    }
    Ok(())
}

/// One record per op (see the module docs for what schema 2 made of it).
fn schema_v1(db: &IdbDatabase) -> Result<(), JsValue> {
    let ops = db.create_object_store("ops")?;
    let st: Array = ["s", "t"].into_iter().map(JsValue::from_str).collect();
    ops.create_index_with_str_sequence(IDX_SECTOR_TIME, &st)?;
    ops.create_index_with_str("stored", "a")?;
    db.create_object_store("slices")?;
    db.create_object_store(INFO)?;
    Ok(())
}

/// Packs of ops (module docs): creates `packs` and its indexes, then copies schema 1's `ops`
/// into it and deletes `ops` (in the glue, as the copy takes requests). Totals and slice
/// hashes stay as they are: the ops are the same.
fn schema_v2(db: &IdbDatabase, tx: &IdbTransaction) -> Result<(), JsValue> {
    let packs = db.create_object_store(PACKS)?;
    let multi = IdbIndexParameters::new();
    multi.set_multi_entry(true);
    packs.create_index_with_str_and_optional_parameters(IDX_SECTOR_TIME, "st", &multi)?;
    multi.set_unique(true);
    packs.create_index_with_str_and_optional_parameters(IDX_ID, "k", &multi)?;
    // A pre-release layout (with `meta`) is not copied: `open` refuses it with advice.
    if !db.object_store_names().contains("meta") {
        pack_schema_1(tx, db, OPS_PER_PACK);
    }
    Ok(())
}

/// Slice hashes in batches (module docs): creates `slice_batches` (keys generated, so records
/// sort in the order written) and moves schema 2's `slices` records into one of them (in the
/// glue, as the move takes requests).
fn schema_v3(db: &IdbDatabase, tx: &IdbTransaction) -> Result<(), JsValue> {
    let params = web_sys::IdbObjectStoreParameters::new();
    params.set_auto_increment(true);
    db.create_object_store_with_optional_parameters(SLICE_BATCHES, &params)?;
    // A pre-release layout has none: `open` refuses it with advice.
    if db.object_store_names().contains("slices") {
        batch_schema_2_slices(tx, db);
    }
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
                    crate::browser::clock::describe_js(&e)
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
// pages of held ops

/// Largest magnitude (µs) an f64 holds exactly: 2^53. Index times at or past it are rounded.
const EXACT_F64_MICROS: f64 = 9_007_199_254_740_992.0;

/// The `sector_time` range of sector `s` a page `q` reads (`q` leaves some:
/// [`HeldOpsQuery::leaves_none`] is checked first).
/// Index keys are `[s, f64 created_at, op key]`; bounds on the f64 alone are widened (an
/// empty array sorts after any op key) and the exact range is checked per key
/// ([`HeldOpsQuery::holds`]). A cursor exact in f64 bounds by its op id too, so that ops of
/// its µs already listed are not read again: op keys start with the 32-byte id, so
/// `id ‖ 0xFF…` sorts after every key of that id and `id ‖ 0x00…` before.
fn held_range(s: u32, q: &HeldOpsQuery) -> Result<IdbKeyRange, StoreError> {
    let s = f64::from(s);
    let (lo, hi) = (q.start.as_micros() as f64, q.end.as_micros() as f64);
    let mut lower = (arr(&[s, lo]), false);
    let upper_end = arr(&[s, hi]);
    upper_end.push(&Array::new());
    let mut upper = (upper_end, false);
    // A cursor outside the range bounds nothing: before it in the page's order the range
    // alone bounds the page, and one past it never gets here (`leaves_none`).
    if let Some((at, id)) = q.cursor_in_range() {
        let t = at.as_micros() as f64;
        let exact = t.abs() < EXACT_F64_MICROS;
        let bound = |fill: u8| {
            let k = arr(&[s, t]);
            if exact {
                let mut b = [fill; PK_BYTES];
                b[..OP_ID_BYTES].copy_from_slice(id.as_bytes());
                k.push(&Uint8Array::from(&b[..]).buffer());
            } else if fill == 0x00 {
                // An upper bound past every key of the f64 time: its whole run is read.
                k.push(&Array::new());
            }
            k
        };
        if q.newest_first {
            upper = (bound(0x00), exact);
        } else {
            lower = (bound(0xFF), exact);
        }
    }
    IdbKeyRange::bound_with_lower_open_and_upper_open(&lower.0, &upper.0, lower.1, upper.1)
        .map_err(js_error)
}

/// One sector's keys of a page, in the cursor's direction and exact order: the ids past
/// [`HeldOpsQuery::holds`], read one at a time (the cursor moves only when asked for the
/// next). Keys sharing an f64 time past 2^53 µs may differ in the exact `created_at`: such a
/// run is read whole and sorted before it is handed out.
struct SectorKeys {
    req: Req,
    cursor: Option<IdbCursor>,
    ended: bool,
    /// The rest of a sorted run, the next key last.
    run: Vec<(Timestamp, OpId)>,
    ahead: Option<(f64, Timestamp, OpId)>,
}

impl SectorKeys {
    fn new(req: IdbRequest) -> SectorKeys {
        SectorKeys {
            req: Req::new(req),
            cursor: None,
            ended: false,
            run: Vec::new(),
            ahead: None,
        }
    }

    /// The next `(created_at, id)` of this sector in the page's order, `None` at its end.
    async fn next(&mut self, q: &HeldOpsQuery) -> Result<Option<(Timestamp, OpId)>, StoreError> {
        if let Some(k) = self.run.pop() {
            return Ok(Some(k));
        }
        let first = match self.ahead.take() {
            Some(k) => k,
            None => match self.read(q).await? {
                Some(k) => k,
                None => return Ok(None),
            },
        };
        if first.0.abs() < EXACT_F64_MICROS {
            return Ok(Some((first.1, first.2)));
        }
        let mut run = vec![(first.1, first.2)];
        while let Some(k) = self.read(q).await? {
            if k.0 != first.0 {
                self.ahead = Some(k);
                break;
            }
            run.push((k.1, k.2));
        }
        // Handed out from the end: the page's order reversed.
        sort::sort_by(&mut run, Ord::cmp);
        if !q.newest_first {
            run.reverse();
        }
        self.run = run;
        Ok(self.run.pop())
    }

    /// The next key of the cursor that `q` holds, as `(f64 time, created_at, id)`.
    async fn read(
        &mut self,
        q: &HeldOpsQuery,
    ) -> Result<Option<(f64, Timestamp, OpId)>, StoreError> {
        loop {
            if self.ended {
                return Ok(None);
            }
            if let Some(c) = self.cursor.take() {
                c.continue_().map_err(js_error)?;
            }
            let Some(step) = SectorTimeStep::next(&self.req).await? else {
                self.ended = true;
                return Ok(None);
            };
            self.cursor = Some(step.cursor);
            if q.holds(step.created_at, &step.id) {
                return Ok(Some((step.t, step.created_at, step.id)));
            }
        }
    }
}

/// One step of a `sector_time` key cursor, its key `[sector, f64 created_at, op key]`
/// decoded. The f64 time is kept beside the exact `created_at` (from the op key) because
/// keys sharing one f64 past 2^53 µs are one run in index order.
struct SectorTimeStep {
    cursor: IdbCursor,
    t: f64,
    created_at: Timestamp,
    id: OpId,
}

impl SectorTimeStep {
    /// The cursor's next key, `None` once it has ended; a key of another shape is
    /// a [`StoreError::Backend`] naming it.
    async fn next(req: &Req) -> Result<Option<SectorTimeStep>, StoreError> {
        let v = req.next().await?;
        if v.is_null() || v.is_undefined() {
            return Ok(None);
        }
        let cursor: IdbCursor = v.dyn_into().map_err(|_| corrupt("cursor"))?;
        let key = cursor.key().map_err(js_error)?;
        let key: &Array = key.dyn_ref().ok_or_else(|| corrupt("sector_time key"))?;
        let t = key
            .get(1)
            .as_f64()
            .ok_or_else(|| corrupt("sector_time key"))?;
        let (id, _, created_at) = parse_pk(&key_bytes(&key.get(2))?)?;
        Ok(Some(SectorTimeStep {
            cursor,
            t,
            created_at,
            id,
        }))
    }
}

/// Whether a page of `limit` ops out of `held` costs less by [`IdbOpStore::held_page`] than by
/// listing the range ([`held_op_ids_by_time_slices`]). Measured in headless Chromium (`npm run
/// bench -- history`, 2026-12-06): the merge ~38 ms (512 cursors) + ~0.27 ms per id, the key
/// cursors moving one step at a time; the listing ~50 ms + ~4 µs per op held (20 000 held, a
/// page of 1 000: 378 ms against 170 ms). They cross near `limit` = 44 + `held` / 67.
fn merge_pays(limit: usize, held: u64) -> bool {
    limit as u64 <= 48 + held / 64
}

/// Which sector's next key comes next in the page of [`IdbOpStore::held_page`]: the newest
/// (newest first) or the oldest `(created_at, id)` of `heads`, `None` when every sector has
/// ended. A scan: 512 heads at most, against IndexedDB's cost per key read.
fn next_head(heads: &[Option<(Timestamp, OpId)>], newest_first: bool) -> Option<usize> {
    let mut best: Option<(usize, &(Timestamp, OpId))> = None;
    for (i, key) in heads.iter().enumerate() {
        if let Some(key) = key
            && best.is_none_or(|(_, b)| (key > b) == newest_first)
        {
            best = Some((i, key));
        }
    }
    best.map(|(i, _)| i)
}

// ---------------------------------------------------------------------------------------------
// records and keys

/// An i64 µs timestamp as an 8-byte key: big-endian with the sign bit flipped, so that byte
/// order is numeric order.
fn ts_key(t: Timestamp) -> [u8; 8] {
    ((t.as_micros() as u64) ^ (1 << 63)).to_be_bytes()
}

fn ts_of_key(b: &[u8]) -> Result<Timestamp, StoreError> {
    let b: [u8; 8] = b.try_into().map_err(|_| corrupt("timestamp key"))?;
    Ok(Timestamp::from_micros(
        (u64::from_be_bytes(b) ^ (1 << 63)) as i64,
    ))
}

/// The primary key of an op: id (32) ‖ encoded length (4) ‖ created_at (8).
fn primary_key(p: &PreparedOp) -> [u8; PK_BYTES] {
    let mut k = [0u8; PK_BYTES];
    k[..32].copy_from_slice(p.op_id.as_bytes());
    k[32..36].copy_from_slice(&p.len().to_be_bytes());
    k[36..].copy_from_slice(&ts_key(p.created_at));
    k
}

/// `(op id, encoded length, created_at)` of a primary key.
fn parse_pk(k: &[u8]) -> Result<(OpId, u32, Timestamp), StoreError> {
    if k.len() != PK_BYTES {
        return Err(corrupt("op key"));
    }
    let len = u32::from_be_bytes([k[32], k[33], k[34], k[35]]);
    Ok((
        OpId::from_bytes(Bytes::copy_from_slice(&k[..32])),
        len,
        ts_of_key(&k[36..])?,
    ))
}

/// The bytes of a binary key (IndexedDB returns binary keys as `ArrayBuffer`s).
fn key_bytes(v: &JsValue) -> Result<Vec<u8>, StoreError> {
    if let Some(b) = v.dyn_ref::<js_sys::ArrayBuffer>() {
        return Ok(Uint8Array::new(b).to_vec());
    }
    v.dyn_ref::<Uint8Array>()
        .map(Uint8Array::to_vec)
        .ok_or_else(|| corrupt("binary key"))
}

/// The 32-byte ids of `ids` back to back (other lengths are never stored, so left out).
fn id_bytes(ids: &[OpId]) -> Vec<u8> {
    ids.iter()
        .map(OpId::as_bytes)
        .filter(|b| b.len() == OP_ID_BYTES)
        .flatten()
        .copied()
        .collect()
}

/// The stored-at stamps and packed op keys of a pack record, checked to match.
fn pack_index(v: &JsValue) -> Result<(Vec<Timestamp>, Vec<u8>), StoreError> {
    let field = |k: &str| Reflect::get(v, &JsValue::from_str(k)).map_err(js_error);
    let stamps = field("a")?
        .dyn_into::<Float64Array>()
        .map_err(|_| corrupt("pack record"))?
        .to_vec();
    let stamps = stamps
        .into_iter()
        .map(stamp_of)
        .collect::<Result<Vec<_>, _>>()?;
    let keys: Array = field("k")?.dyn_into().map_err(|_| corrupt("pack record"))?;
    let mut packed = Vec::with_capacity(keys.length() as usize * PK_BYTES);
    for k in keys.iter() {
        let k = key_bytes(&k)?;
        if k.len() != PK_BYTES {
            return Err(corrupt("op key"));
        }
        packed.extend_from_slice(&k);
    }
    if packed.len() != stamps.len() * PK_BYTES {
        return Err(corrupt("pack record"));
    }
    Ok((stamps, packed))
}

/// A stored-at stamp (a number, see the module docs).
fn read_stamp(v: &JsValue) -> Result<Timestamp, StoreError> {
    v.as_f64()
        .ok_or_else(|| corrupt("stored-at stamp"))
        .and_then(stamp_of)
}

/// A stored-at stamp from its number: whole microseconds.
fn stamp_of(f: f64) -> Result<Timestamp, StoreError> {
    if f.fract() == 0.0 {
        Ok(Timestamp::from_micros(f as i64))
    } else {
        Err(corrupt("stored-at stamp"))
    }
}

/// Packed primary keys from the glue, checked to be whole keys.
fn packed_keys(v: &JsValue) -> Result<Vec<u8>, StoreError> {
    let keys = v
        .dyn_ref::<Uint8Array>()
        .ok_or_else(|| corrupt("keys"))?
        .to_vec();
    if keys.len() % PK_BYTES != 0 {
        return Err(corrupt("keys"));
    }
    Ok(keys)
}

fn to_u32(f: f64) -> Option<u32> {
    (f.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&f)).then_some(f as u32)
}

/// A slice index is stored as two u32 key parts, high then low, since IndexedDB keys are
/// f64 numbers (exact only up to 2^53).
fn slice_index(high: u32, low: u32) -> u64 {
    (u64::from(high) << 32) | u64::from(low)
}

/// One stored slice hash: the arc's bounds, the slice index and the hash.
struct SliceEntry {
    start: u32,
    end: u32,
    index: u64,
    hash: Bytes,
}

impl SliceEntry {
    fn key(&self) -> (u32, u32, u64) {
        (self.start, self.end, self.index)
    }
}

/// In `tx`: every `slice_batches` record joined (`allSliceBatches` in the glue), in the
/// order written; with the number of records and the highest key.
async fn read_slice_batches(
    tx: &IdbTransaction,
) -> Result<(Vec<SliceEntry>, u32, Option<JsValue>), StoreError> {
    let got = JsFuture::from(all_slice_batches(tx))
        .await
        .map_err(js_error)?;
    let got: Array = got.dyn_into().map_err(|_| corrupt("slice hashes"))?;
    let meta = got
        .get(0)
        .dyn_into::<Uint32Array>()
        .map_err(|_| corrupt("slice hashes"))?
        .to_vec();
    let data = got
        .get(1)
        .dyn_into::<Uint8Array>()
        .map_err(|_| corrupt("slice hashes"))?
        .to_vec();
    let records = got
        .get(2)
        .as_f64()
        .and_then(to_u32)
        .ok_or_else(|| corrupt("slice hashes"))?;
    let last = got.get(3);
    let last = (!last.is_undefined()).then_some(last);
    Ok((decode_slices(&meta, Bytes::from(data))?, records, last))
}

/// The entries of a joined batch: 5 numbers each in `meta` (arc start, arc end, index high,
/// index low, end of the hash in `data`).
fn decode_slices(meta: &[u32], data: Bytes) -> Result<Vec<SliceEntry>, StoreError> {
    if !meta.len().is_multiple_of(5) {
        return Err(corrupt("slice hashes"));
    }
    let mut out = Vec::with_capacity(meta.len() / 5);
    let mut from = 0;
    for rec in meta.chunks_exact(5) {
        let &[start, end, high, low, to] = rec else {
            return Err(corrupt("slice hashes"));
        };
        let to = to as usize;
        if to < from || to > data.len() {
            return Err(corrupt("slice hashes"));
        }
        out.push(SliceEntry {
            start,
            end,
            index: slice_index(high, low),
            hash: data.slice(from..to),
        });
        from = to;
    }
    Ok(out)
}

/// The latest entry of each `(arc, index)` of `entries` (in the order written), sorted by arc
/// then index.
fn latest_slices(entries: Vec<SliceEntry>) -> Vec<SliceEntry> {
    let mut order: Vec<(usize, SliceEntry)> = entries.into_iter().enumerate().collect();
    sort::sort_by(&mut order, |(i, a), (j, b)| {
        a.key().cmp(&b.key()).then(j.cmp(i))
    });
    let mut out: Vec<SliceEntry> = Vec::with_capacity(order.len());
    for (_, e) in order {
        // The first of a key is the latest written.
        if out.last().is_none_or(|l| l.key() != e.key()) {
            out.push(e);
        }
    }
    out
}

/// In `tx`: adds `entries` as one `slice_batches` record `{m, d}` (the packed form
/// `allSliceBatches` reads), after deleting every record up to `replaces` (a merge). Returns
/// whether a record was added (none for no entries).
fn add_slice_batch(
    tx: &IdbTransaction,
    entries: &[SliceEntry],
    replaces: Option<&JsValue>,
) -> Result<bool, StoreError> {
    let mut meta = Vec::with_capacity(entries.len() * 5);
    let mut data = Vec::with_capacity(entries.len() * 32);
    for e in entries {
        data.extend_from_slice(&e.hash);
        let to = u32::try_from(data.len()).map_err(|_| corrupt("slice hash batch size"))?;
        meta.extend_from_slice(&[e.start, e.end, (e.index >> 32) as u32, e.index as u32, to]);
    }
    let st = store(tx, SLICE_BATCHES)?;
    if let Some(last) = replaces {
        let range = IdbKeyRange::upper_bound(last).map_err(js_error)?;
        st.delete(&range).map_err(js_error)?;
    }
    if entries.is_empty() {
        return Ok(false);
    }
    let value = Object::new();
    set(&value, "m", &Uint32Array::from(&meta[..]).into())?;
    set(&value, "d", &Uint8Array::from(&data[..]).into())?;
    st.add(&value).map_err(js_error)?;
    Ok(true)
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

fn arr(xs: &[f64]) -> Array {
    xs.iter().map(|x| JsValue::from_f64(*x)).collect()
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

/// Asks for persistent storage in the background; records the browser's answer in `answer`
/// and resolves the returned future with it (at once with `None` where the API is missing).
fn request_persistence(
    answer: Rc<Cell<Option<bool>>>,
) -> futures::future::Shared<LocalBoxFuture<'static, Option<bool>>> {
    let call = || -> Option<js_sys::Promise> {
        let nav = Reflect::get(&js_sys::global(), &JsValue::from_str("navigator")).ok()?;
        let storage = Reflect::get(&nav, &JsValue::from_str("storage")).ok()?;
        let persist: js_sys::Function = Reflect::get(&storage, &JsValue::from_str("persist"))
            .ok()?
            .dyn_into()
            .ok()?;
        persist.call0(&storage).ok()?.dyn_into().ok()
    };
    let (tx, rx) = futures::channel::oneshot::channel();
    if let Some(p) = call() {
        wasm_bindgen_futures::spawn_local(async move {
            let r = wasm_bindgen_futures::JsFuture::from(p).await;
            let got = r.ok().and_then(|v| v.as_bool());
            answer.set(got);
            let _ = tx.send(got);
        });
    } else {
        let _ = tx.send(None);
    }
    use futures::FutureExt;
    rx.map(|r| r.ok().flatten()).boxed_local().shared()
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
    let name = e.name();
    // Chromium's QuotaExceededError has an empty message: the name alone then, not "…: ".
    let text = match e.message() {
        m if m.is_empty() => name.clone(),
        m => format!("{name}: {m}"),
    };
    match name.as_str() {
        "QuotaExceededError" => StoreError::QuotaExceeded(text),
        "VersionError" => StoreError::Backend(format!(
            "the op store database is newer than this code (schema {SCHEMA_VERSION}): \
             reload to get the newer code ({text})"
        )),
        _ => StoreError::Backend(text),
    }
}

fn js_error(v: JsValue) -> StoreError {
    match v.dyn_ref::<DomException>() {
        Some(e) => dom_error(e),
        None => StoreError::Backend(crate::browser::clock::describe_js(&v)),
    }
}

/// `IDBTransaction.commit()` (IndexedDB 3.0, "commit a transaction"): no more requests will
/// follow, commit now rather than once the event loop turns. Fails (`InvalidStateError`) if
/// the transaction is no longer active.
fn commit(tx: &IdbTransaction) -> Result<(), StoreError> {
    // web-sys marks its binding deprecated; the method is in the IndexedDB 3.0 spec and in
    // each browser the package README lists (since Chromium 76, Firefox 74, Safari 15).
    #[allow(deprecated)]
    tx.commit().map_err(js_error)
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

#[wasm_bindgen(module = "/src/browser/idb_glue.js")]
extern "C" {
    /// Adds a packed batch in `tx` as packs and updates the totals; resolves to per-op "new"
    /// flags.
    #[wasm_bindgen(js_name = writePacks)]
    fn write_packs(
        tx: &IdbTransaction,
        data: &Uint8Array,
        offs: &Uint32Array,
        keys: &Uint8Array,
        meta: &Float64Array,
        per_pack: u32,
    ) -> Promise;

    /// Looks up 32-byte ids (one by one, or by a scan when they are many): "held" flags, or
    /// `[data, offs, keys]` of the ops of packs holding them (and maybe others).
    #[wasm_bindgen(js_name = readIds)]
    fn read_ids(tx: &IdbTransaction, ids: &Uint8Array, with_data: bool) -> Promise;

    /// Packed op keys of `sector_time` over `[lowers[i], uppers[i]]` ranges, in any order.
    #[wasm_bindgen(js_name = timeKeys)]
    fn time_keys(tx: &IdbTransaction, lowers: &Array, uppers: &Array) -> Promise;

    /// Every `slice_batches` record joined: `[meta, data, records, last key]` (5 numbers per
    /// entry in `meta`).
    #[wasm_bindgen(js_name = allSliceBatches)]
    fn all_slice_batches(tx: &IdbTransaction) -> Promise;

    /// Schema step 3's move of `slices` into one `slice_batches` record (aborts `tx` on
    /// error).
    #[wasm_bindgen(js_name = batchSchema2Slices)]
    fn batch_schema_2_slices(tx: &IdbTransaction, db: &IdbDatabase);

    /// Schema step 2's copy of `ops` into packs (aborts `tx` on error).
    #[wasm_bindgen(js_name = packSchema1)]
    fn pack_schema_1(tx: &IdbTransaction, db: &IdbDatabase, per_pack: u32);
}

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
