//! Test tooling, compiled only with the `testing` cargo feature (and for this crate's own unit
//! tests), never into the npm package: the op store conformance suite run against every
//! [`OpStore`](crate::api::OpStore) implementation, and the in-page signal loopback.

pub mod loopback;
pub mod store_conformance;

pub use loopback::LoopbackHub;
