//! The dashboard's HTML, rendered from the engine's reports. Every value is escaped.

use ferry_engine::dora::DoraFigures;
use ferry_engine::promote::GateResult;
use ferry_engine::rollback::{HistoryRow, StatusCell};

use crate::actions::ActionForm;
use crate::{Drift, DriftView, PipelineData};

pub const LOGIN: &str = "<form method=\"post\" action=\"/ui/login\">\
<label>Token <input type=\"password\" name=\"token\" id=\"token\" autocomplete=\"off\"></label> \
<button type=\"submit\" id=\"login\">Log in</button></form>";

pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub fn page(title: &str, user: Option<&str>, body: &str) -> String {
    let who = match user {
        Some(u) => format!("signed in as <b id=\"user\">{}</b>", esc(u)),
        None => "<a href=\"/ui/login\">log in</a>".to_string(),
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width\"><title>{t} · Ferry</title>\
<link rel=\"stylesheet\" href=\"/ui/static/ui.css\"></head><body>\
<header><b>Ferry</b><a href=\"/ui\">pipeline</a><span class=\"muted\">{who}</span></header>\
<main><h1>{t}</h1>{body}</main><script src=\"/ui/static/ui.js\"></script></body></html>",
        t = esc(title)
    )
}

fn short_digest(d: &str) -> String {
    let hex = d.trim_start_matches("sha256:");
    format!("sha256:{}", &hex[..hex.len().min(12)])
}

/// Per app: the environments in order, each a card.
pub fn pipeline(data: &PipelineData, drift: Option<&DriftView>, csrf: Option<&str>) -> String {
    let Ok(report) = &data.report else {
        return String::new();
    };
    let mut out = String::new();
    for a in &report.apps {
        out.push_str(&format!(
            "<section class=\"app\" id=\"app-{0}\"><h2>{0}</h2><div class=\"pipeline\">",
            esc(&a.app)
        ));
        for (i, c) in a.envs.iter().enumerate() {
            if i > 0 {
                out.push_str("<div class=\"arrow\">→</div>");
            }
            let key = |env: &str| (a.app.clone(), env.to_string());
            let next = a.envs.get(i + 1).map(|n| Next {
                env: &n.env,
                gated: data.approvals.contains(&key(&n.env)),
                gates: data.gates.get(&key(&n.env)),
            });
            let card_data = Card {
                app: &a.app,
                cell: c,
                last: data.last.get(&key(&c.env)),
                drift: drift.map(|d| d.get(&key(&c.env))),
                next,
            };
            out.push_str(&card(&card_data, csrf));
        }
        out.push_str("</div>");
        if let Some(f) = data
            .dora
            .as_ref()
            .and_then(|d| d.apps.iter().find(|f| f.app == a.app))
        {
            out.push_str(&delivery(f));
        }
        out.push_str("</section>");
    }
    out
}

/// One line of DORA figures (docs/metrics.md).
fn delivery(f: &DoraFigures) -> String {
    let secs = |s: Option<i64>| {
        s.map(ferry_engine::dora::human_duration)
            .unwrap_or_else(|| "-".into())
    };
    format!(
        "<p class=\"muted\" id=\"dora-{}\">last 30 days in {}: {} deployments ({:.2}/day), lead time {}, change failure {}, time to restore {}</p>",
        esc(&f.app),
        esc(&f.env),
        f.deployments,
        f.deployments_per_day,
        secs(f.lead_time.median_seconds),
        f.change_failure_rate
            .map(|r| format!("{:.0}%", r * 100.0))
            .unwrap_or_else(|| "-".into()),
        secs(f.time_to_restore.median_seconds)
    )
}

/// One environment's card: what runs, drift, last change, next promotion, actions.
struct Card<'a> {
    app: &'a str,
    cell: &'a StatusCell,
    last: Option<&'a HistoryRow>,
    /// `None`: the driver knows no cluster; `Some(None)`: no finding for this environment.
    drift: Option<Option<&'a Drift>>,
    next: Option<Next<'a>>,
}

/// The next stage of the pipeline.
struct Next<'a> {
    env: &'a str,
    /// The stage has an approval gate.
    gated: bool,
    /// The `--dry-run` of the promotion to it: the gates it passes, or why it is refused.
    gates: Option<&'a Result<Vec<GateResult>, String>>,
}

fn card(k: &Card<'_>, csrf: Option<&str>) -> String {
    let (app, c) = (k.app, k.cell);
    let id = format!("{}-{}", esc(app), esc(&c.env));
    let mut s = format!(
        "<div class=\"env\" id=\"env-{id}\"><h3>{}</h3>",
        esc(&c.env)
    );
    if let Some(e) = &c.error {
        s.push_str(&format!("<p class=\"error\">{}</p></div>", esc(e)));
        return s;
    }
    s.push_str(&format!(
        "<div class=\"tag\" id=\"tag-{id}\">{}</div>",
        esc(c.tag.as_deref().unwrap_or("-"))
    ));
    if let Some(d) = &c.digest {
        s.push_str(&format!(
            "<div class=\"mono muted\" title=\"{}\">{}</div>",
            esc(d),
            esc(&short_digest(d))
        ));
    }
    if let Some(h) = &c.hold {
        s.push_str(&format!(
            "<div class=\"held\" id=\"held-{id}\">held at {} by {}{}</div>",
            esc(&h.tag),
            esc(&h.by),
            if h.reason.is_empty() {
                String::new()
            } else {
                format!(": {}", esc(&h.reason))
            }
        ));
    }
    s.push_str(&drift_line(&id, k.drift));
    if let Some(r) = k.last {
        s.push_str(&format!(
            "<div class=\"muted\">last change <span class=\"badge\">{}</span> <span class=\"mono\">{}</span> by {} at {}</div>",
            esc(r.kind.as_str()),
            esc(&r.commit[..r.commit.len().min(10)]),
            esc(&r.author),
            esc(&r.time)
        ));
    }
    if let Some(n) = &k.next {
        s.push_str(&gates_line(&id, n));
    }
    s.push_str(&format!(
        "<div><a href=\"/ui/history/{}/{}\">history</a></div>",
        esc(app),
        esc(&c.env)
    ));
    if let Some(token) = csrf {
        s.push_str(&actions(app, c, k.next.as_ref(), token));
    }
    s.push_str("</div>");
    s
}

/// In sync, drifted (live vs Git), pending, missing, or unknown.
fn drift_line(id: &str, drift: Option<Option<&Drift>>) -> String {
    let (class, text) = match drift {
        None => ("muted", "drift unknown: no cluster".to_string()),
        Some(None) => ("muted", "drift unknown".to_string()),
        Some(Some(Drift::InSync)) => ("ok", "in sync with the cluster".to_string()),
        Some(Some(Drift::Drifted { live_tag, git_tag })) => (
            "error",
            format!("drifted: live {} vs Git {}", esc(live_tag), esc(git_tag)),
        ),
        Some(Some(Drift::Pending { git_tag })) => (
            "muted",
            format!("pending: the cluster has not applied {} yet", esc(git_tag)),
        ),
        Some(Some(Drift::Missing)) => ("muted", "no live workload runs the app".to_string()),
    };
    format!("<div class=\"drift {class}\" id=\"drift-{id}\">{text}</div>")
}

/// The gates of the promotion to the next stage, as its `--dry-run` finds them.
fn gates_line(id: &str, n: &Next<'_>) -> String {
    let body = match n.gates {
        None => "<span class=\"muted\">unknown</span>".to_string(),
        Some(Ok(gates)) => gates
            .iter()
            .map(|g| {
                format!(
                    "<span class=\"badge {}\" title=\"{}\">{} {}</span>",
                    if g.passed { "ok" } else { "error" },
                    esc(&g.detail),
                    esc(&g.gate),
                    if g.passed { "✓" } else { "✗" }
                )
            })
            .collect::<Vec<_>>()
            .join(" "),
        Some(Err(why)) => format!("<span class=\"error\">refused: {}</span>", esc(why)),
    };
    format!(
        "<div class=\"gates\" id=\"gates-{id}\">to {}: {body}</div>",
        esc(n.env)
    )
}

fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        esc(name),
        esc(value)
    )
}

/// An action form posting to the confirmation page; `extra`: more (escaped) fields.
fn form(action: &str, app: &str, env: &str, token: &str, label: &str, extra: &str) -> String {
    format!(
        "<form class=\"inline\" method=\"post\" action=\"/ui/confirm\" id=\"{action}-{a}-{e}\">\
<input type=\"hidden\" name=\"action\" value=\"{action}\"><input type=\"hidden\" name=\"app\" value=\"{a}\">\
<input type=\"hidden\" name=\"env\" value=\"{e}\"><input type=\"hidden\" name=\"csrf\" value=\"{t}\">{extra}\
<button type=\"submit\">{label}</button></form>",
        a = esc(app),
        e = esc(env),
        t = esc(token),
        label = esc(label)
    )
}

fn actions(app: &str, c: &StatusCell, next: Option<&Next<'_>>, token: &str) -> String {
    const REASON: &str = "<input type=\"text\" name=\"reason\" placeholder=\"reason\">";
    const TAG: &str = "<input type=\"text\" name=\"tag\" placeholder=\"tag (default: newest)\">";
    const BACK: &str = "<input type=\"text\" name=\"reason\" placeholder=\"reason\">\
<input type=\"text\" name=\"to\" placeholder=\"to tag\" size=\"10\">\
<input type=\"number\" name=\"steps\" placeholder=\"steps\" min=\"1\" size=\"3\">";
    let mut s = String::from("<div class=\"actions\">");
    if let Some(Next { env: n, gated, .. }) = next {
        let (n, gated) = (*n, *gated);
        let label = format!("promote to {n}");
        s.push_str(&form("promote", app, n, token, &label, TAG));
        // The next stage's approval gate: approve what this stage runs.
        if let (true, Some(tag)) = (gated, &c.tag) {
            let label = format!("approve for {n}");
            s.push_str(&form("approve", app, n, token, &label, &hidden("tag", tag)));
        }
    }
    s.push_str(&form("rollback", app, &c.env, token, "roll back", BACK));
    if c.held {
        s.push_str(&form("unhold", app, &c.env, token, "unhold", ""));
    } else {
        s.push_str(&form("hold", app, &c.env, token, "hold", REASON));
    }
    s.push_str("</div>");
    s
}

/// `links[i]` is the forge's page of `rows[i].commit`, when the repository has one.
pub fn history(app: &str, env: &str, rows: &[HistoryRow], links: &[Option<String>]) -> String {
    let mut s = format!(
        "<p><a href=\"/ui\">← pipeline</a> · {} in {}</p><table id=\"history\"><thead><tr><th>time</th><th>change</th><th>digest</th><th>commit</th><th>author</th><th>kind</th><th>reason</th></tr></thead><tbody>",
        esc(app),
        esc(env)
    );
    for (i, r) in rows.iter().enumerate().rev() {
        let short = esc(&r.commit[..r.commit.len().min(10)]);
        let commit = match links.get(i).cloned().flatten() {
            Some(url) => format!("<a href=\"{}\">{short}</a>", esc(&url)),
            None => short,
        };
        let dash = |t: &str| {
            if t.is_empty() {
                "-".to_string()
            } else {
                esc(t)
            }
        };
        s.push_str(&format!(
            "<tr><td>{}</td><td class=\"mono\">{} → {}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td>{}</td><td><span class=\"badge\">{}</span></td><td>{}</td></tr>",
            esc(&r.time),
            dash(&r.old_tag),
            dash(&r.new_tag),
            r.digest.as_deref().map(short_digest).map(|d| esc(&d)).unwrap_or_else(|| "-".into()),
            commit,
            esc(&r.author),
            esc(r.kind.as_str()),
            esc(&r.reason)
        ));
    }
    s.push_str("</tbody></table>");
    s
}

pub fn confirm(f: &ActionForm, token: &str, preview: &Result<String, String>) -> String {
    let mut s = format!(
        "<p>{} <b>{}</b> in <b>{}</b>{}{}</p>",
        esc(&f.action),
        esc(&f.app),
        esc(&f.env),
        [("tag", &f.tag), ("to", &f.to), ("steps", &f.steps)]
            .iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(k, v)| format!(", {k} {}", esc(v.trim())))
            .collect::<String>(),
        if f.reason.is_empty() {
            String::new()
        } else {
            format!(", reason “{}”", esc(&f.reason))
        }
    );
    match preview {
        Ok(p) => {
            s.push_str(&format!(
                "<h2>Preview (dry run: nothing was written)</h2><pre id=\"preview\">{}</pre>",
                esc(p)
            ));
            let fields = [
                ("action", &f.action),
                ("app", &f.app),
                ("env", &f.env),
                ("reason", &f.reason),
                ("tag", &f.tag),
                ("to", &f.to),
                ("steps", &f.steps),
            ];
            s.push_str("<form method=\"post\" action=\"/ui/run\" id=\"confirm\">");
            for (k, v) in fields {
                s.push_str(&hidden(k, v));
            }
            s.push_str(&hidden("csrf", token));
            s.push_str(&format!(
                "<button type=\"submit\" id=\"confirm-button\">Confirm {}</button> <a href=\"/ui\">cancel</a></form>",
                esc(&f.action)
            ));
        }
        Err(e) => s.push_str(&format!(
            "<p class=\"error\" id=\"preview-error\">{}</p><a href=\"/ui\">back</a>",
            esc(e)
        )),
    }
    s
}

pub fn result(action: &str, r: &Result<String, String>) -> String {
    match r {
        Ok(report) => format!(
            "<p id=\"done\">{} done.</p><pre>{}</pre><a href=\"/ui\">pipeline</a>",
            esc(action),
            esc(report)
        ),
        Err(e) => format!(
            "<p class=\"error\" id=\"failed\">{}</p><a href=\"/ui\">pipeline</a>",
            esc(e)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_lines_say_in_sync_drifted_or_unknown() {
        let drifted = Drift::Drifted {
            live_tag: "v1<".into(),
            git_tag: "v2".into(),
        };
        assert!(drift_line("a-b", None).contains("drift unknown: no cluster"));
        assert!(drift_line("a-b", Some(None)).contains(">drift unknown<"));
        assert!(drift_line("a-b", Some(Some(&Drift::InSync))).contains("in sync"));
        let line = drift_line("a-b", Some(Some(&drifted)));
        assert!(line.contains("drifted: live v1&lt; vs Git v2"), "{line}");
        assert!(line.contains("id=\"drift-a-b\""), "{line}");
    }

    #[test]
    fn gate_lines_show_each_gate_or_the_refusal() {
        let gates = Ok(vec![
            GateResult {
                gate: "sourceDeployed".into(),
                passed: true,
                detail: "runs it".into(),
            },
            GateResult {
                gate: "soak".into(),
                passed: true,
                detail: "1h".into(),
            },
        ]);
        let next = Next {
            env: "production",
            gated: false,
            gates: Some(&gates),
        };
        let line = gates_line("a-staging", &next);
        assert!(line.contains("to production:"), "{line}");
        assert!(
            line.contains("sourceDeployed ✓") && line.contains("soak ✓"),
            "{line}"
        );
        let refused = Err("soak not elapsed".to_string());
        let next = Next {
            gates: Some(&refused),
            ..next
        };
        assert!(gates_line("a-staging", &next).contains("refused: soak not elapsed"));
    }
}
