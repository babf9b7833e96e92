//! ferry-notify: telling people about changes. Receivers and their filters
//! (`--notify-config`), the payloads (generic JSON webhook with an optional HMAC-SHA256
//! signature, Slack- and Teams-compatible messages; each carries a stable event id), one
//! message per change delivered at least once (a ledger beside the state file records each
//! delivery as pending, then delivered or failed, so a restart resends only what it cut short),
//! and HTTP delivery with bounded exponential backoff on background tasks ([`deliver`], also
//! used by the controller's Flux-format `--events-addr`).
//!
//! Must not: read Git, registries or clusters, or decide what changed (the caller turns Git
//! evidence into [`Event`]s), and never block the caller on a receiver: a slow or failing
//! receiver only costs its own background task.

mod config;
mod deliver;
mod event;
mod ledger;
mod notifier;

pub use config::{ConfigError, NotifyConfig, Provider, Receiver};
pub use deliver::{Outgoing, Retry, deliver};
pub use event::{Event, EventKind, Side};
pub use ledger::{Delivery, Ledger};
pub use notifier::{EVENT_ID_HEADER, Notifier, SIGNATURE_HEADER, sign};
