//! The dashboard's HTML, rendered from the engine's reports. Every value is escaped.

use std::collections::{BTreeMap, BTreeSet};

use ferry_engine::dora::{DoraFigures, DoraReport};
use ferry_engine::rollback::{HistoryRow, StatusCell, StatusReport};

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
pub fn pipeline(
    report: &StatusReport,
    last: &BTreeMap<(String, String), HistoryRow>,
    dora: Option<&DoraReport>,
    approvals: &BTreeSet<(String, String)>,
    csrf: Option<&str>,
) -> String {
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
            let next = a.envs.get(i + 1).map(|n| {
                let gated = approvals.contains(&(a.app.clone(), n.env.clone()));
                (n.env.as_str(), gated)
            });
            out.push_str(&card(
                &a.app,
                c,
                last.get(&(a.app.clone(), c.env.clone())),
                next,
                csrf,
            ));
        }
        out.push_str("</div>");
        if let Some(f) = dora.and_then(|d| d.apps.iter().find(|f| f.app == a.app)) {
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

fn card(
    app: &str,
    c: &StatusCell,
    last: Option<&HistoryRow>,
    next: Option<(&str, bool)>,
    csrf: Option<&str>,
) -> String {
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
    if let Some(r) = last {
        s.push_str(&format!(
            "<div class=\"muted\">last change <span class=\"badge\">{}</span> <span class=\"mono\">{}</span> by {} at {}</div>",
            esc(r.kind.as_str()),
            esc(&r.commit[..r.commit.len().min(10)]),
            esc(&r.author),
            esc(&r.time)
        ));
    }
    s.push_str(&format!(
        "<div><a href=\"/ui/history/{}/{}\">history</a></div>",
        esc(app),
        esc(&c.env)
    ));
    if let Some(token) = csrf {
        s.push_str(&actions(app, c, next, token));
    }
    s.push_str("</div>");
    s
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

fn actions(app: &str, c: &StatusCell, next: Option<(&str, bool)>, token: &str) -> String {
    const REASON: &str = "<input type=\"text\" name=\"reason\" placeholder=\"reason\">";
    let mut s = String::from("<div class=\"actions\">");
    if let Some((n, gated)) = next {
        let label = format!("promote to {n}");
        s.push_str(&form("promote", app, n, token, &label, ""));
        // The next stage's approval gate: approve what this stage runs.
        if let (true, Some(tag)) = (gated, &c.tag) {
            let label = format!("approve for {n}");
            s.push_str(&form("approve", app, n, token, &label, &hidden("tag", tag)));
        }
    }
    s.push_str(&form("rollback", app, &c.env, token, "roll back", REASON));
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

pub fn confirm(f: &super::ActionForm, token: &str, preview: &Result<String, String>) -> String {
    let mut s = format!(
        "<p>{} <b>{}</b> in <b>{}</b>{}{}</p>",
        esc(&f.action),
        esc(&f.app),
        esc(&f.env),
        if f.tag.is_empty() {
            String::new()
        } else {
            format!(", tag {}", esc(&f.tag))
        },
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
