//! Ferry's end-to-end tests, one binary (as ripgrep and gitoxide do): every module drives the
//! real `ferry` binary against real servers (registry, git, Kubernetes control plane) started on
//! 127.0.0.1 through `testbed/`. One binary links once and shares the servers between modules.
//!
//! Run one module with `cargo test -p ferry --test e2e MODULE::`.

mod cli_meta;
mod cluster;
mod common;
mod controller;
mod controller_ui;
mod dashboard;
mod faults;
mod history;
mod image;
mod init;
mod install;
mod metrics;
mod promote;
mod reconcile_reliability;
mod reconcile_transports;
mod render_corpus;
mod render_defects;
mod repo_source;
mod rollback;
mod scan_badinput;
mod scan_e2e;
mod serve;
mod setters_e2e;
