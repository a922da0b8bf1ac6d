//! Kitsune2's data types, pure values with their rules: ids and locations ([`id`]), storage
//! arcs and sectors ([`arc`]), µs timestamps ([`time`]), peer URLs ([`url`]), signed agent
//! infos ([`agent`]) and the op envelope with its content-addressed id ([`op`]).

pub mod agent;
pub mod arc;
pub mod id;
pub mod op;
pub mod time;
pub mod url;
