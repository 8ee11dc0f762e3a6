//! The parts of the deterministic simulation (`tests/simulation.rs`): a seeded random
//! number generator, the virtual business clock, the in-memory store with its fault
//! injector and rival process, the schedule of commands, one run of a seed, and the checker.

pub mod check;
pub mod clock;
pub mod commands;
pub mod rng;
pub mod run;
pub mod store;
