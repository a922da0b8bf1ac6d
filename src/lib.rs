//! fennec: a browser tab as a full peer of a Kitsune2-style DHT.
//!
//! Layers (see `docs/design.md` for the map and the data flow):
//! - [`model`]: Kitsune2's data types; [`wire`]: its messages;
//! - [`api`]: the traits the core is written against (Transport, OpStore, Clock, Signal);
//! - [`core`]: the sans-IO protocol of a space; [`net`]: sans-IO networking (sbd, connection
//!   policy and handshake, framing, admission); [`store`]: the in-memory op store;
//! - `browser`: every wasm32-only part (timers, WebSocket, WebRTC, IndexedDB, the browser
//!   peer); `js`: the wasm-bindgen API; `testing` (feature): test tooling;
//! - below every layer: [`bounded`] (the FIFO-bounded set and map every network-fed
//!   collection uses, in `core/` and `net/`), [`hash`], [`sort`].
//!
//! The two `cfg(target_arch = "wasm32")` gates below are the only ones in the crate.

#![deny(missing_docs)]

pub mod api;
pub mod core;
pub mod model;
pub mod net;
pub mod store;
pub mod wire;

pub mod bounded;
pub mod hash;
pub mod sort;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(target_arch = "wasm32")]
pub mod browser;
#[cfg(target_arch = "wasm32")]
pub mod js;

pub use api::{Clock, MetaOp, OpStore, StoreError, Transport};
pub use model::agent::{
    AGENT_INFO_EXPIRY_US, AgentError, AgentInfo, AgentInfoSigned, AgentKey, Ed25519Verifier,
    MAX_AGENT_INFO_BYTES, RE_SIGN_MARGIN_US, Signer, Verifier,
};
pub use model::arc::DhtArc;
pub use model::id::{AgentId, Id, IdError, Locator, OpId, SpaceId};
pub use model::op::{MAX_OP_BYTES, Op, OpError, StoredOp, verify_op};
pub use model::time::Timestamp;
pub use model::url::{Url, UrlError};
pub use store::MemOpStore;
pub use wire::{FetchMsg, GossipMsg, MAX_FRAME_BYTES, PublishMsg, WireError, WireMessage};
