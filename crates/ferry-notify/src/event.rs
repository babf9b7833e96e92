//! What happened, and how each provider says it.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The kinds of change a receiver can filter on (`events:` in the config).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// An image-update automation commit.
    Automation,
    Promotion,
    Rollback,
    Hold,
    Unhold,
    /// A person edited the marked value.
    ManualEdit,
    /// The cluster runs another image than Git says.
    Drift,
    /// A `kubectl rollout undo` adopted into Git (`ferry rollback --to-live`).
    RolloutUndo,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Automation => "automation",
            EventKind::Promotion => "promotion",
            EventKind::Rollback => "rollback",
            EventKind::Hold => "hold",
            EventKind::Unhold => "unhold",
            EventKind::ManualEdit => "manual-edit",
            EventKind::Drift => "drift",
            EventKind::RolloutUndo => "rollout-undo",
        }
    }
}

/// One side of a change.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Side {
    pub tag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// One change of one app in one environment, from Git evidence.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Event {
    pub kind: EventKind,
    pub app: String,
    pub env: String,
    pub old: Side,
    pub new: Side,
    /// The commit that made the change (the de-duplication key is derived from it).
    pub commit: String,
    pub author: String,
    pub reason: String,
    /// RFC 3339 UTC.
    pub time: String,
}

impl Event {
    /// The same change always gives the same key, in every process.
    pub fn key(&self) -> String {
        format!(
            "{} {} {} {}",
            self.commit,
            self.app,
            self.env,
            self.kind.as_str()
        )
    }

    /// The event id receivers de-duplicate on (`X-Ferry-Event-Id`, and `id` in the generic
    /// payload): 32 hex digits of the SHA-256 of the key, so every send of a change, from any
    /// process, carries the same id.
    pub fn id(&self) -> String {
        let digest = Sha256::digest(self.key().as_bytes());
        hex::encode(&digest[..16])
    }

    fn headline(&self) -> String {
        let tag = |s: &Side| {
            if s.tag.is_empty() {
                "-".to_string()
            } else {
                s.tag.clone()
            }
        };
        format!(
            "{} {} in {}: {} → {}",
            self.app,
            self.kind.as_str(),
            self.env,
            tag(&self.old),
            tag(&self.new)
        )
    }

    fn facts(&self) -> Vec<(&'static str, String)> {
        let digest = |s: &Side| s.digest.clone().unwrap_or_else(|| "-".into());
        vec![
            ("app", self.app.clone()),
            ("environment", self.env.clone()),
            ("old", format!("{} ({})", self.old.tag, digest(&self.old))),
            ("new", format!("{} ({})", self.new.tag, digest(&self.new))),
            ("commit", self.commit.clone()),
            ("author", self.author.clone()),
            ("reason", self.reason.clone()),
        ]
    }

    /// The generic webhook body: the event itself and its `id`.
    pub fn json(&self) -> Value {
        let mut v = json!(self);
        v["id"] = json!(self.id());
        v
    }

    /// A Slack incoming-webhook message (`text` plus a fields section).
    pub fn slack(&self) -> Value {
        let fields: Vec<Value> = self
            .facts()
            .into_iter()
            .map(|(k, v)| json!({"type": "mrkdwn", "text": format!("*{k}*\n{v}")}))
            .collect();
        json!({
            "text": self.headline(),
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": self.headline()}},
                {"type": "section", "fields": fields},
            ],
        })
    }

    /// A Microsoft Teams incoming-webhook message card.
    pub fn teams(&self) -> Value {
        let facts: Vec<Value> = self
            .facts()
            .into_iter()
            .map(|(k, v)| json!({"name": k, "value": v}))
            .collect();
        json!({
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": self.headline(),
            "title": self.headline(),
            "sections": [{"facts": facts}],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        Event {
            kind: EventKind::Promotion,
            app: "backend".into(),
            env: "production".into(),
            old: Side {
                tag: "production-v1".into(),
                digest: Some("sha256:aa".into()),
            },
            new: Side {
                tag: "production-v2".into(),
                digest: None,
            },
            commit: "c0ffee".into(),
            author: "alice <alice@example.invalid>".into(),
            reason: "release".into(),
            time: "2026-12-05T10:00:00Z".into(),
        }
    }

    #[test]
    fn payloads_carry_old_and_new() {
        let e = event();
        assert_eq!(e.key(), "c0ffee backend production promotion");
        assert_eq!(e.id().len(), 32);
        assert_eq!(e.id(), event().id(), "stable");
        let j = e.json();
        assert_eq!(j["id"], e.id());
        assert_eq!(j["kind"], "promotion");
        assert_eq!(j["old"]["digest"], "sha256:aa");
        assert_eq!(j["new"]["tag"], "production-v2");
        assert!(j["new"].get("digest").is_none());
        let s = e.slack();
        assert_eq!(
            s["text"],
            "backend promotion in production: production-v1 → production-v2"
        );
        assert_eq!(
            s["blocks"][1]["fields"][2]["text"],
            "*old*\nproduction-v1 (sha256:aa)"
        );
        let t = e.teams();
        assert_eq!(t["@type"], "MessageCard");
        assert_eq!(t["sections"][0]["facts"][4]["value"], "c0ffee");
    }
}
