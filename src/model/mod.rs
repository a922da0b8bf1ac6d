//! Kitsune2's data types, pure values with their rules: ids and locations ([`id`]), storage
//! arcs and sectors ([`arc`]), µs timestamps ([`time`]), peer URLs ([`url`]), signed agent
//! infos ([`agent`]) and the op envelope with its content-addressed id ([`op`]); [`config`]: why
//! a configuration was refused.

pub mod agent;
pub mod arc;
pub mod config;
pub mod id;
pub mod op;
pub mod time;
pub mod url;
