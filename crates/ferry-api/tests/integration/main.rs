//! ferry-api's integration tests: one binary with a module per area (the ripgrep/gitoxide
//! style: one link, one process, shared server start-ups).

mod load;
mod vars;
