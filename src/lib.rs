//! fennec: a browser tab as a full peer of a Kitsune2-style DHT.
//!
//! The protocol core is sans-IO and compiles natively; browser glue lives under
//! `cfg(target_arch = "wasm32")`. See `README.md` and `docs/design.md` for the map.

#![deny(missing_docs)]

pub mod agent;
pub mod arc;
pub mod bootstrap;
pub mod catchup;
pub mod fetch;
pub mod id;
pub mod net;
pub mod op;
pub mod peer_store;
pub mod publish;
pub mod runtime;
pub mod space;
pub mod store;
pub mod time;
pub mod transport_api;
pub mod url;
pub mod wire;

pub use agent::{
    AGENT_INFO_EXPIRY_US, AgentError, AgentInfo, AgentInfoSigned, AgentKey, Ed25519Verifier,
    MAX_AGENT_INFO_BYTES, RE_SIGN_MARGIN_US, Signer, Verifier,
};
pub use arc::DhtArc;
pub use id::{AgentId, Id, IdError, Locator, OpId, SpaceId};
pub use op::{MAX_OP_BYTES, Op, OpError, StoredOp, verify_op};
pub use store::{MemOpStore, MetaOp, OpStore, StoreError};
pub use time::Timestamp;
pub use url::{Url, UrlError};
pub use wire::{FetchMsg, GossipMsg, MAX_FRAME_BYTES, PublishMsg, WireError, WireMessage};

#[cfg(target_arch = "wasm32")]
pub mod js;
#[cfg(target_arch = "wasm32")]
pub mod peer;
