//! ferry-registry's integration tests: one binary with a module per area (the ripgrep/gitoxide
//! style: one link, one process, shared server start-ups).

mod common;
mod conformance;
mod faults;
mod mount_refused;
mod props;
mod real_registry;
