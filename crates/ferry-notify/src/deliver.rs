//! One HTTP POST with bounded retries and exponential backoff, on the caller's task (spawn it).

use std::time::Duration;

/// A request to deliver: URL, JSON body bytes and extra headers (a signature).
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub url: String,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

/// How hard to try: `attempts` POSTs in all, waiting `first`, `2 × first`, … (at most `max`)
/// between them; each POST times out after `timeout`.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub attempts: u32,
    pub first: Duration,
    pub max: Duration,
    pub timeout: Duration,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry {
            attempts: 5,
            first: Duration::from_millis(500),
            max: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
        }
    }
}

impl Retry {
    fn delay(&self, attempt: u32) -> Duration {
        self.first
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(self.max)
    }
}

/// POSTs until `accepted(status)` or the attempts run out; returns the number of attempts made
/// and whether the receiver accepted. Logs failures without the URL's query (it may hold a
/// token, as Slack and Teams webhook URLs do).
pub async fn deliver(
    client: &reqwest::Client,
    out: &Outgoing,
    retry: Retry,
    accepted: fn(u16) -> bool,
) -> (u32, bool) {
    let shown = out.url.split(['?', '#']).next().unwrap_or_default();
    for attempt in 0..retry.attempts.max(1) {
        if attempt > 0 {
            tokio::time::sleep(retry.delay(attempt - 1)).await;
        }
        let mut req = client
            .post(&out.url)
            .timeout(retry.timeout)
            .header("content-type", "application/json")
            .body(out.body.clone());
        for (k, v) in &out.headers {
            req = req.header(k, v);
        }
        match req.send().await {
            Ok(r) if accepted(r.status().as_u16()) => return (attempt + 1, true),
            Ok(r) => {
                tracing::warn!(status = %r.status(), attempt, url = shown, "receiver refused the notification")
            }
            Err(e) => {
                tracing::warn!(error = %without_url(&e), attempt, url = shown, "cannot deliver the notification")
            }
        }
    }
    (retry.attempts.max(1), false)
}

fn without_url(e: &reqwest::Error) -> String {
    let mut e = e.to_string();
    if let Some(i) = e.find(" for url (") {
        e.truncate(i);
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let r = Retry {
            attempts: 6,
            first: Duration::from_millis(100),
            max: Duration::from_millis(500),
            timeout: Duration::from_secs(1),
        };
        let d: Vec<u128> = (0..5).map(|a| r.delay(a).as_millis()).collect();
        assert_eq!(d, [100, 200, 400, 500, 500]);
    }
}
