//! The sans-IO protocol core of a space: inputs in (messages, store results, commands, the
//! current time), outputs polled (sends, store requests, events, the next deadline). Nothing
//! here names a browser type, a socket or a clock; `browser/` drives it in the browser and
//! `testing/` in native simulations.
//!
//! - [`space`]: one joined space; wires the modules below with Kitsune2's admission rule.
//! - [`peer_store`]: verified, expiring agent infos; arc, location and URL queries.
//! - [`publish`]: brdcst-style broadcast pool announcing op ids to the peers that store them.
//! - [`fetch`]: the fetch queue (batches, per-peer limits, timeouts, alternative sources).
//! - [`membership`]: SWIM (foca) over the active set: suspect, down, alive, left.
//! - [`known`]: op ids each peer is known to hold (publish leaves them out).
//! - [`peer_view`]: the live peers the app sees and one `peer` event per change.
//! - [`dht`]: the DHT model gossip compares (sectors x time slices, snapshots, diffs).
//! - [`gossip`]: k2gossip rounds over the DHT model, the one repair path (`space` drives it).
//! - [`config`]: [`config::ConfigError`], what every config's `validate()` returns.
//! - [`bootstrap`]: Kitsune2 bootstrap HTTP requests and responses, and the polling policy.

pub mod bootstrap;
pub mod config;
pub mod dht;
pub mod fetch;
pub mod gossip;
pub mod known;
pub mod membership;
pub mod op_cache;
pub mod peer_store;
pub mod peer_view;
pub mod publish;
pub mod space;
