//! Events in, deliveries out: filters, de-duplication and background delivery.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::{NotifyConfig, Provider, Receiver};
use crate::deliver::{Outgoing, Retry, deliver};
use crate::event::Event;
use crate::ledger::Ledger;

/// The header of a signed generic webhook: `sha256=<hex HMAC-SHA256 of the body>`.
pub const SIGNATURE_HEADER: &str = "X-Ferry-Signature";

pub struct Notifier {
    receivers: Vec<Receiver>,
    client: reqwest::Client,
    ledger: Arc<Ledger>,
    retry: Retry,
    /// Set after the first offer: with a new ledger, that offer is the baseline (not sent).
    offered: AtomicBool,
}

impl Notifier {
    pub fn new(
        config: NotifyConfig,
        ledger: Ledger,
        client: reqwest::Client,
        retry: Retry,
    ) -> Notifier {
        Notifier {
            receivers: config.receivers,
            client,
            ledger: Arc::new(ledger),
            retry,
            offered: AtomicBool::new(false),
        }
    }

    /// True when the next offer sends new changes (false while it would only record the
    /// baseline), so callers can skip preparing details nobody will read.
    pub fn sends_next(&self) -> bool {
        self.offered.load(Ordering::Acquire) || self.ledger.existed()
    }

    /// True when the change was notified already (or recorded in the baseline).
    pub fn known(&self, e: &Event) -> bool {
        self.ledger.contains(&e.key())
    }

    /// Offers the changes Git shows now (any number of times: each change is sent once, ever).
    /// The first offer with a ledger that did not exist only records what is there already.
    /// Returns the delivery tasks started (one per receiver and new change).
    pub fn offer(&self, events: &[Event]) -> Vec<tokio::task::JoinHandle<()>> {
        let baseline = !self.offered.swap(true, Ordering::AcqRel) && !self.ledger.existed();
        if baseline && let Err(e) = self.ledger.touch() {
            tracing::warn!("notification ledger: {e}");
        }
        self.send_new(events, baseline)
    }

    /// Sends what was observed live, not read from Git (drift): there is no history to take a
    /// baseline of, so every new change is sent, once (the ledger remembers it).
    pub fn offer_live(&self, events: &[Event]) -> Vec<tokio::task::JoinHandle<()>> {
        self.send_new(events, false)
    }

    /// Records each event in the ledger and, unless `baseline`, delivers the new ones.
    fn send_new(&self, events: &[Event], baseline: bool) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        for e in events {
            match self.ledger.insert(&e.key()) {
                Ok(true) if !baseline => {}
                Ok(_) => continue,
                Err(err) => {
                    // Without the ledger a restart would resend: send nothing rather than twice.
                    tracing::warn!("notification ledger: {err}; not sending {}", e.key());
                    continue;
                }
            }
            for r in self.receivers.iter().filter(|r| r.wants(e)) {
                let out = outgoing(r, e);
                let (client, retry, name, key) =
                    (self.client.clone(), self.retry, r.name.clone(), e.key());
                tasks.push(tokio::spawn(async move {
                    let (attempts, ok) =
                        deliver(&client, &out, retry, |s| (200..300).contains(&s)).await;
                    if ok {
                        tracing::info!(receiver = name, change = key, attempts, "notified");
                    } else {
                        tracing::warn!(
                            receiver = name,
                            change = key,
                            attempts,
                            "notification dropped after its retries"
                        );
                    }
                }));
            }
        }
        tasks
    }
}

fn outgoing(r: &Receiver, e: &Event) -> Outgoing {
    let body = match r.provider {
        Provider::Webhook => e.json(),
        Provider::Slack => e.slack(),
        Provider::Teams => e.teams(),
    };
    let body = serde_json::to_vec(&body).unwrap_or_default();
    let mut headers = Vec::new();
    if let Some(key) = &r.secret {
        headers.push((
            SIGNATURE_HEADER.to_string(),
            format!("sha256={}", sign(key, &body)),
        ));
    }
    Outgoing {
        url: r.url.clone(),
        body,
        headers,
    }
}

/// Hex HMAC-SHA256 of `body` under `key`.
pub fn sign(key: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
