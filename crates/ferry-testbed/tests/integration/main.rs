//! ferry-testbed's integration tests: one binary with a module per area (the ripgrep/gitoxide
//! style: one link, one process, shared server start-ups).

mod cluster;
mod stop_all;
