//! fennec: a browser tab as a full peer of a Kitsune2-style DHT.
//!
//! The protocol core is sans-IO and compiles natively; browser glue lives under
//! `cfg(target_arch = "wasm32")`. See `README.md` and `docs/design.md` for the map.

#![deny(missing_docs)]

pub mod id;
pub mod net;
pub mod time;

pub use id::{AgentId, Id, IdError, Locator, OpId, SpaceId};
pub use time::Timestamp;
