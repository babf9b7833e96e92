//! ferry-git's integration tests: one binary with a module per area (the ripgrep/gitoxide
//! style: one link, one process, shared server start-ups).

mod common;
mod crash;
mod history;
mod secrets;
mod signing;
mod transports;
mod update;
