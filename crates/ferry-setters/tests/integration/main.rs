//! ferry-setters's integration tests: one binary with a module per area (the ripgrep/gitoxide
//! style: one link, one process, shared server start-ups).

mod conformance;
mod hard;
mod oracle;
mod outside;
mod props;
mod regress_fuzz;
mod util;
