//! Test tooling, compiled only with the `testing` cargo feature (and for this crate's own unit
//! tests), never into the npm package. One harness for every native test of the protocol:
//!
//! - [`VirtualClock`] (an [`api::Clock`](crate::api::Clock) whose time moves only when a test
//!   moves it) and [`run_until`] (a local executor on virtual time), for async drivers;
//! - [`MemNetwork`] / [`MemTransport`] (an in-memory [`api::Transport`](crate::api::Transport));
//! - [`SlowReads`]: an in-memory op store whose reads take virtual seconds;
//! - [`SimNet`]: a simulated network of sans-IO spaces (seeded RNG, virtual time, latency,
//!   loss, partitions, crashes, bootstrap and preflight models, byte accounting);
//! - [`store_conformance`]: the op store conformance suite run against every
//!   [`OpStore`](crate::api::OpStore) implementation;
//! - [`LoopbackHub`]: the in-page signal loopback;
//! - [`partition`]: the partition switch of browser e2e tests (`fennec.testPartition`).

pub mod clock;
pub mod loopback;
pub mod partition;
pub mod sim;
pub mod slow_store;
pub mod store_conformance;
pub mod transport;

pub use clock::{VirtualClock, run_until};
pub use loopback::LoopbackHub;
pub use sim::{SimConfig, SimNet, SimNode, SimRng, frame_kind};
pub use slow_store::SlowReads;
pub use transport::{MemNetwork, MemTransport};
