//! ferry-setters's integration tests: one binary with a module per area (the ripgrep/gitoxide
//! style: one link, one process, shared server start-ups).

mod oracle;
mod util;
mod conformance;
mod hard;
mod outside;
mod props;
mod regress_fuzz;
