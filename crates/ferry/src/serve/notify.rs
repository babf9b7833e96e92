//! `--notify-config`: after each pass, the changes Git shows (the `ferry history` timelines and
//! the hold/unhold commits of every app × environment) become events for `ferry-notify`, which
//! delivers each change once (and, at start, what a stopped run left pending). Runs beside the
//! scheduler: a slow receiver never delays a pass.

use std::collections::HashMap;
use std::sync::Arc;

use ferry_api::ObjectSet;
use ferry_engine::Engine;
use ferry_engine::rollback::{ChangeKind, HistoryRow, HoldCommit, PromotionCommit};
use ferry_notify::{Event, EventKind, Notifier, Side};
use tokio::sync::watch;

pub async fn run(
    engine: Arc<Engine>,
    notifier: Arc<Notifier>,
    mut objects: watch::Receiver<Option<Arc<ObjectSet>>>,
    mut passes: watch::Receiver<u64>,
) {
    // What the previous run left in flight goes out now, not after the first pass.
    let resumed = notifier.resume();
    if !resumed.is_empty() {
        tracing::info!(resumed = resumed.len(), "notifications resumed");
    }
    while let Some(set) = super::scheduler::next_pass(&mut objects, &mut passes).await {
        let mut events = collect(&engine, &set).await;
        if notifier.sends_next() {
            fill_digests(&engine, &set, &notifier, &mut events).await;
        }
        // The delivery tasks run on their own; nothing waits for them.
        let started = notifier.offer(&events);
        tracing::info!(
            changes = events.len(),
            new = started.len(),
            "notifications checked"
        );
    }
}

/// Every change of every app × environment, oldest first per environment.
async fn collect(engine: &Engine, set: &ObjectSet) -> Vec<Event> {
    let mut events = Vec::new();
    for (app, envs) in ferry_engine::rollback::layout(set, None) {
        for env in &envs {
            match engine.history_from_git(set, env, &app, None).await {
                Ok(rows) => events.extend(changes(&app, env, &rows)),
                Err(e) => tracing::warn!(app, env, "notifications: history unreadable: {e}"),
            }
            match engine.hold_log(set, env, &app, None).await {
                Ok(holds) => events.extend(holds.iter().map(|h| hold(&app, env, h))),
                Err(e) => tracing::warn!(app, env, "notifications: holds unreadable: {e}"),
            }
            match engine.promotion_log(set, env, &app).await {
                Ok(p) => events.extend(p.iter().map(|p| promotion(&app, env, p))),
                Err(e) => tracing::warn!(app, env, "notifications: releases unreadable: {e}"),
            }
        }
    }
    events
}

fn changes(app: &str, env: &str, rows: &[HistoryRow]) -> Vec<Event> {
    let mut out = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        // The first value is the environment's creation, not a change to announce.
        if r.old_tag.is_empty() {
            continue;
        }
        let kind = match r.kind {
            ChangeKind::Automation => EventKind::Automation,
            ChangeKind::Promotion => EventKind::Promotion,
            // The controller's (or `serve --adopt-rollouts`') commit: `Ferry-Adopted: rollout-undo`.
            ChangeKind::RolloutUndoAdopted => EventKind::RolloutUndo,
            ChangeKind::Rollback => EventKind::Rollback,
            ChangeKind::Hold => EventKind::Hold,
            ChangeKind::Manual => EventKind::ManualEdit,
        };
        let old_digest = i.checked_sub(1).and_then(|p| rows[p].digest.clone());
        out.push(Event {
            kind,
            app: app.to_string(),
            env: env.to_string(),
            old: Side {
                tag: r.old_tag.clone(),
                digest: old_digest,
            },
            new: Side {
                tag: r.new_tag.clone(),
                digest: r.digest.clone(),
            },
            commit: r.commit.clone(),
            author: r.author.clone(),
            reason: r.reason.clone(),
            time: r.time.clone(),
        });
    }
    out
}

/// A promotion: the source environment's tag → the immutable tag written, one digest.
fn promotion(app: &str, env: &str, p: &PromotionCommit) -> Event {
    let side = |tag: &str| Side {
        tag: tag.to_string(),
        digest: (!p.digest.is_empty()).then(|| p.digest.clone()),
    };
    Event {
        kind: EventKind::Promotion,
        app: app.to_string(),
        env: env.to_string(),
        old: side(&p.source_tag),
        new: side(&p.target_tag),
        commit: p.commit.clone(),
        author: p.by.clone(),
        reason: format!("{} (from {})", p.subject, p.from_env),
        time: p.time.clone(),
    }
}

fn hold(app: &str, env: &str, h: &HoldCommit) -> Event {
    let side = Side {
        tag: h.tag.clone(),
        digest: None,
    };
    Event {
        kind: if h.unhold {
            EventKind::Unhold
        } else {
            EventKind::Hold
        },
        app: app.to_string(),
        env: env.to_string(),
        old: side.clone(),
        new: side,
        commit: h.commit.clone(),
        author: h.author.clone(),
        reason: if h.reason.is_empty() {
            format!("by {}", h.by)
        } else {
            format!("{} (by {})", h.reason, h.by)
        },
        time: h.time.clone(),
    }
}

/// Digests Git does not pin, for the changes about to be sent: one registry HEAD per tag.
async fn fill_digests(engine: &Engine, set: &ObjectSet, notifier: &Notifier, events: &mut [Event]) {
    let mut known: HashMap<(String, String, String), Option<String>> = HashMap::new();
    for e in events.iter_mut().filter(|e| !notifier.known(e)) {
        let (app, env) = (e.app.clone(), e.env.clone());
        for side in [&mut e.old, &mut e.new] {
            if side.digest.is_some() || side.tag.is_empty() {
                continue;
            }
            let k = (app.clone(), env.clone(), side.tag.clone());
            if !known.contains_key(&k) {
                let d = engine.tag_digest(set, &env, &app, &side.tag).await;
                known.insert(k.clone(), d);
            }
            side.digest = known.get(&k).cloned().flatten();
        }
    }
}
