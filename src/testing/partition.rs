//! A network partition switch for browser e2e tests (`fennec.testPartition(on)` in the
//! `testing` build, `tests/e2e/partition.test.mjs`): while on, the space transport of this
//! wasm instance (one tab) drops every frame it is asked to send, reporting success as a lossy
//! network would, and every message it receives. Connections themselves (signalling,
//! preflight) are untouched, so peers see a tab that is connected but never answers: SWIM
//! declares it down, announcements and fetches to and from it are lost, and gossip must repair
//! what it missed once the switch is off. Compiled only with the `testing` feature: the
//! release package has no such switch.

use std::cell::Cell;

thread_local! {
    static PARTITIONED: Cell<bool> = const { Cell::new(false) };
}

/// Turns the partition of this instance on or off.
pub fn set_partitioned(on: bool) {
    PARTITIONED.with(|p| p.set(on));
}

/// Whether this instance is partitioned (frames both ways are dropped).
pub fn partitioned() -> bool {
    PARTITIONED.with(Cell::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_switch_turns_on_and_off() {
        assert!(!partitioned());
        set_partitioned(true);
        assert!(partitioned());
        set_partitioned(false);
        assert!(!partitioned());
    }
}
