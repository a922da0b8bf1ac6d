//! The traits the protocol core is written against, and nothing else (like Kitsune2's
//! `kitsune2_api` crate): a [`Transport`] to peers, an [`OpStore`] for ops, a [`Clock`] for
//! time and timers, a [`Signal`] path for reaching peers before a direct connection exists.
//! Implementations live in `store/` (memory), `browser/` (IndexedDB, WebRTC, sbd, timers) and
//! `testing/` (virtual clock, simulated network).

pub mod clock;
pub mod held;
pub mod op_store;
pub mod signal;
pub mod transport;

pub use clock::Clock;
pub use held::{HeldOpsQuery, held_op_ids_by_time_slices};
pub use op_store::{
    BoundedOpIds, MetaOp, OpStore, OpTotals, SectorSliceHash, StoreError, TimeSliceOpIds,
    op_times_by_reading,
};
pub use signal::{Signal, SignalError, SignalRx};
pub use transport::{Transport, TransportError, TransportEvent};
