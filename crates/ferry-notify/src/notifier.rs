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

/// The header carrying [`Event::id`] on every message, so a receiver can drop the rare second
/// delivery of a change (a restart while its first delivery was in flight).
pub const EVENT_ID_HEADER: &str = "X-Ferry-Event-Id";

pub struct Notifier {
    receivers: Vec<Receiver>,
    client: reqwest::Client,
    ledger: Arc<Ledger>,
    retry: Retry,
    /// Set after the first offer: with a new ledger, that offer is the baseline (not sent).
    offered: AtomicBool,
    /// Set once the deliveries a previous run left pending were started again.
    resumed: AtomicBool,
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
            resumed: AtomicBool::new(false),
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

    /// Starts again the deliveries a previous run recorded as pending and did not finish (it
    /// stopped mid-delivery), to the receivers of the same name in today's config. Runs once per
    /// process; the first offer calls it too. Returns the delivery tasks started.
    pub fn resume(&self) -> Vec<tokio::task::JoinHandle<()>> {
        if self.resumed.swap(true, Ordering::AcqRel) {
            return Vec::new();
        }
        let mut tasks = Vec::new();
        for (event, name) in self.ledger.pending() {
            match self.receivers.iter().find(|r| r.name == name) {
                Some(r) => {
                    tracing::info!(receiver = name, change = event.key(), "resending");
                    tasks.push(self.spawn(r, &event));
                }
                None => {
                    tracing::warn!(
                        receiver = name,
                        change = event.key(),
                        "a pending notification's receiver is no longer configured: dropped"
                    );
                    if let Err(e) = self.ledger.finish(&event.key(), &name, false) {
                        tracing::warn!("notification ledger: {e}");
                    }
                }
            }
        }
        tasks
    }

    /// Offers the changes Git shows now (any number of times: each change is delivered once,
    /// and sent again only when a restart cut its delivery short). The first offer with a
    /// ledger that did not exist only records what is there already.
    /// Returns the delivery tasks started (one per receiver and new or resumed change).
    pub fn offer(&self, events: &[Event]) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = self.resume();
        let baseline = !self.offered.swap(true, Ordering::AcqRel) && !self.ledger.existed();
        if baseline && let Err(e) = self.ledger.touch() {
            tracing::warn!("notification ledger: {e}");
        }
        tasks.extend(self.send_new(events, baseline));
        tasks
    }

    /// Sends what was observed live, not read from Git (drift): there is no history to take a
    /// baseline of, so every new change is sent, once (the ledger remembers it).
    pub fn offer_live(&self, events: &[Event]) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = self.resume();
        tasks.extend(self.send_new(events, false));
        tasks
    }

    /// Records each new event in the ledger (pending for the receivers that want it, or only
    /// known when `baseline` or nobody wants it) and starts its deliveries.
    fn send_new(&self, events: &[Event], baseline: bool) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        for e in events {
            if self.ledger.contains(&e.key()) {
                continue;
            }
            let wanted: Vec<&Receiver> = self.receivers.iter().filter(|r| r.wants(e)).collect();
            let recorded = if baseline || wanted.is_empty() {
                self.ledger.insert(&e.key()).map(|_| false)
            } else {
                let names: Vec<String> = wanted.iter().map(|r| r.name.clone()).collect();
                self.ledger.begin(e, &names)
            };
            match recorded {
                Ok(true) => tasks.extend(wanted.into_iter().map(|r| self.spawn(r, e))),
                Ok(false) => {}
                // Not recorded as pending, so not sent: the next pass offers it again.
                Err(err) => tracing::warn!("notification ledger: {err}; not sending {}", e.key()),
            }
        }
        tasks
    }

    /// Delivers `e` to `r` on a task of its own, then records how it ended.
    fn spawn(&self, r: &Receiver, e: &Event) -> tokio::task::JoinHandle<()> {
        let out = outgoing(r, e);
        let (client, retry, ledger) = (self.client.clone(), self.retry, self.ledger.clone());
        let (name, key) = (r.name.clone(), e.key());
        tokio::spawn(async move {
            let (attempts, ok) = deliver(&client, &out, retry, |s| (200..300).contains(&s)).await;
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
            if let Err(err) = ledger.finish(&key, &name, ok) {
                // Left pending: sent again after a restart (the receiver sees the same id).
                tracing::warn!("notification ledger: {err}");
            }
        })
    }
}

fn outgoing(r: &Receiver, e: &Event) -> Outgoing {
    let body = match r.provider {
        Provider::Webhook => e.json(),
        Provider::Slack => e.slack(),
        Provider::Teams => e.teams(),
    };
    let body = serde_json::to_vec(&body).unwrap_or_default();
    let mut headers = vec![(EVENT_ID_HEADER.to_string(), e.id())];
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
    use crate::event::{EventKind, Side};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A local receiver answering 200 to each request; sends each request head on the channel.
    async fn receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut c, _)) = listener.accept().await {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Head and the small JSON body arrive together; read until the blank line.
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = tx.send(String::from_utf8_lossy(&buf).to_lowercase());
                let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                let _ = c.write_all(reply).await;
            }
        });
        (url, rx)
    }

    fn event(commit: &str) -> Event {
        Event {
            kind: EventKind::Automation,
            app: "backend".into(),
            env: "develop".into(),
            old: Side::default(),
            new: Side::default(),
            commit: commit.into(),
            author: "a".into(),
            reason: String::new(),
            time: String::new(),
        }
    }

    #[tokio::test]
    async fn a_restart_resends_only_pending_deliveries_with_their_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.notified");
        let (sent, delivered, baseline) = (event("c1"), event("c2"), event("c0"));
        {
            // The previous run: c1 was in flight when it stopped, c2 had been delivered.
            let l = Ledger::open(&path).unwrap();
            l.insert(&baseline.key()).unwrap();
            l.begin(&sent, &["ops".to_string()]).unwrap();
            l.begin(&delivered, &["ops".to_string()]).unwrap();
            l.finish(&delivered.key(), "ops", true).unwrap();
        }
        let (url, mut heads) = receiver().await;
        let config = NotifyConfig {
            receivers: vec![Receiver {
                name: "ops".into(),
                provider: Provider::Webhook,
                url,
                secret: None,
                apps: Vec::new(),
                envs: Vec::new(),
                events: Vec::new(),
            }],
        };
        let _ = rustls::crypto::ring::default_provider().install_default();
        let n = Notifier::new(
            config,
            Ledger::open(&path).unwrap(),
            reqwest::Client::new(),
            Retry::default(),
        );
        let tasks = n.offer(&[baseline, sent.clone(), delivered]);
        assert_eq!(tasks.len(), 1, "only the pending delivery");
        for t in tasks {
            t.await.unwrap();
        }
        let head = heads.recv().await.unwrap();
        assert!(
            head.contains(&format!("x-ferry-event-id: {}", sent.id())),
            "{head}"
        );
        assert!(heads.try_recv().is_err());
        assert!(n.offer(std::slice::from_ref(&sent)).is_empty());
        assert!(n.resume().is_empty());
        // Settled: a further restart has nothing to resend.
        let l = Ledger::open(&path).unwrap();
        assert!(l.contains(&sent.key()) && l.pending().is_empty());
    }

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
