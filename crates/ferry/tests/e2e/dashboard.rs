//! `ferry serve --ui` end to end: the real daemon, registry (push notifications) and git server.
//! Over raw HTTP: 401 without a token, 403 without the CSRF token and nothing written, the
//! token's name recorded as `--by`. In headless Chromium (Debian's `chromium-driver` over
//! WebDriver): the pipeline, a develop build appearing live, promote staging → production with
//! the dry-run confirmation (Git and registry as with the CLI), roll back with a reason, the hold.

use crate::common;
use std::time::Duration;

use crate::common::daemon::*;
use crate::common::webdriver::browser;
use crate::common::*;

const TOKEN: &str = "tok-alice-1b2c";
const STAGING: &str = "staging-v0.0.1-a1b2c3d-1738860123";
const PROD_FILE: &str = "flux/apps/backend/production/deployment.yaml";

fn ui_setup(prefix: &str) -> Option<Setup> {
    let mut s = setup(prefix)?;
    let tokens = s.ws.join("ui-tokens");
    std::fs::write(&tokens, format!("# name:token\nalice:{TOKEN}\n")).unwrap();
    s.args.extend([
        "--ui".into(),
        "--ui-token-file".into(),
        tokens.display().to_string(),
    ]);
    Some(s)
}

fn remote(s: &Setup, path: &str) -> String {
    remote_file(&s.git, &s.repo, path)
}

fn wait_remote(s: &Setup, path: &str, needle: &str) {
    let ok = poll(Duration::from_secs(60), || {
        remote(s, path).contains(needle).then_some(())
    });
    assert!(
        ok.is_some(),
        "{needle} never reached {path}:\n{}",
        remote(s, path)
    );
}

/// Commit messages (subject, body, trailers) of the remote branch, newest first.
fn messages(s: &Setup) -> Vec<String> {
    remote_log(&s.git, &s.repo, "%B%x00")
        .split('\0')
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty())
        .collect()
}

/// The CSRF token of the first form of a page.
pub(crate) fn csrf_of(page: &str) -> String {
    let i = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    page[i..].split('"').next().unwrap().to_string()
}

#[test]
fn actions_need_the_token_and_the_csrf_token_and_record_the_token_name() {
    let Some(s) = ui_setup("ui-auth") else { return };
    let _d = s.daemon("ui-auth.log");
    let bearer = format!("Bearer {TOKEN}");
    let auth = [("Authorization", bearer.as_str())];
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let with_auth = [form[0], auth[0]];
    let hold = b"action=hold&app=backend&env=staging&reason=freeze";
    let head = remote_head(&s.git, &s.repo);

    // Reading and acting need the token.
    assert_eq!(http(s.port, "GET", "/ui", &[], b"").0, 401);
    assert_eq!(
        http(
            s.port,
            "GET",
            "/ui",
            &[("Authorization", "Bearer wrong")],
            b""
        )
        .0,
        401
    );
    assert_eq!(http(s.port, "POST", "/ui/run", &form, hold).0, 401);
    // A token without the CSRF token (or with another one): refused, nothing written.
    let (status, body) = http(s.port, "POST", "/ui/run", &with_auth, hold);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("nothing was written"));
    let forged = [hold.as_slice(), b"&csrf=0000"].concat();
    assert_eq!(http(s.port, "POST", "/ui/run", &with_auth, &forged).0, 403);
    assert_eq!(remote_head(&s.git, &s.repo), head);

    // With both: the hold is written, by the token's name.
    let t = std::time::Instant::now();
    let (status, page) = http(s.port, "GET", "/ui", &auth, b"");
    eprintln!("GET /ui: {:?}", t.elapsed());
    let t = std::time::Instant::now();
    http(s.port, "GET", "/ui", &auth, b"");
    eprintln!("GET /ui again: {:?}", t.elapsed());
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"tag-backend-staging\""), "{page}");
    let body = [
        hold.as_slice(),
        format!("&csrf={}", csrf_of(&page)).as_bytes(),
    ]
    .concat();
    let (status, page) = http(s.port, "POST", "/ui/run", &with_auth, &body);
    assert_eq!(status, 200, "{page}");
    let msg = &messages(&s)[0];
    for t in [
        "Ferry-Kind: hold",
        "Ferry-By: alice",
        "Ferry-Reason: freeze",
    ] {
        assert!(msg.contains(t), "missing {t} in {msg}");
    }

    // Approve (the action behind an approval gate): the preview, then `ferry approve`'s commit.
    let (_, page) = http(s.port, "GET", "/ui", &auth, b"");
    let csrf = csrf_of(&page);
    cards_and_optional_fields(&s, &page, &with_auth, &csrf);
    let approve = format!(
        "action=approve&app=backend&env=production&tag=staging-v0.0.0-0000000-0&csrf={csrf}"
    );
    let (status, page) = http(
        s.port,
        "POST",
        "/ui/confirm",
        &with_auth,
        approve.as_bytes(),
    );
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("releases/backend/approvals/production/staging-v0.0.0-0000000-0.yaml"),
        "{page}"
    );
    let (status, page) = http(s.port, "POST", "/ui/run", &with_auth, approve.as_bytes());
    assert_eq!(status, 200, "{page}");
    let msg = &messages(&s)[0];
    for t in [
        "Ferry-Kind: approval",
        "Ferry-Approved-By: alice",
        "Ferry-Tag: staging-v0.0.0-0000000-0",
    ] {
        assert!(msg.contains(t), "missing {t} in {msg}");
    }
    assert!(
        remote(
            &s,
            "releases/backend/approvals/production/staging-v0.0.0-0000000-0.yaml"
        )
        .contains("approvedBy: \"alice\"")
    );

    // The token never appears in what the dashboard serves.
    let (_, page) = http(s.port, "GET", "/ui", &auth, b"");
    assert!(!page.contains(TOKEN));
}

/// The card's drift line (no cluster here) and the gates of the next promotion (its dry run);
/// the optional fields of the forms reach the engine, and bad ones are refused before it.
fn cards_and_optional_fields(s: &Setup, page: &str, with_auth: &[(&str, &str)], csrf: &str) {
    let drift = page
        .split("id=\"drift-backend-staging\">")
        .nth(1)
        .unwrap_or_default();
    assert!(drift.starts_with("drift unknown: no cluster"), "{page}");
    let gates = page
        .split("id=\"gates-backend-staging\">")
        .nth(1)
        .unwrap_or_default();
    assert!(gates.starts_with("to production: "), "{page}");
    let head = remote_head(&s.git, &s.repo);
    let confirm = |form: &str| {
        let body = format!("{form}&csrf={csrf}");
        let (status, page) = http(s.port, "POST", "/ui/confirm", with_auth, body.as_bytes());
        assert_eq!(status, 200, "{page}");
        page
    };
    for (form, error) in [
        (
            "action=rollback&app=backend&env=staging&to=v1&steps=2",
            "rollback takes `to` or `steps`, not both",
        ),
        (
            "action=rollback&app=backend&env=staging&steps=0",
            "steps: expected a whole number of at least 1, got &quot;0&quot;",
        ),
        (
            "action=hold&app=backend&env=staging&tag=v1",
            "hold takes no `tag` field",
        ),
        // The tag reaches `promote --tag` (the engine looks it up).
        (
            "action=promote&app=backend&env=production&tag=no-such-tag",
            "no-such-tag does not exist",
        ),
    ] {
        let page = confirm(form);
        assert!(page.contains("id=\"preview-error\""), "{form}: {page}");
        assert!(page.contains(error), "{form}: {page}");
    }
    // A run with bad fields is refused too, and nothing is written.
    let body = format!("action=rollback&app=backend&env=staging&steps=x&csrf={csrf}");
    let (status, page) = http(s.port, "POST", "/ui/run", with_auth, body.as_bytes());
    assert_eq!(status, 422, "{page}");
    assert_eq!(remote_head(&s.git, &s.repo), head);
}

#[test]
fn chromium_sees_live_builds_promotes_rolls_back_and_sees_the_hold() {
    let Some(s) = ui_setup("ui-browser") else {
        return;
    };
    let Some(b) = browser() else { return };
    s.reg.push("org/backend", STAGING);
    let _d = s.daemon("ui-browser.log");
    wait_remote(&s, "flux/apps/backend/staging/deployment.yaml", STAGING);
    let ui = format!("http://127.0.0.1:{}/ui", s.port);
    let t0 = std::time::Instant::now();
    let step = |what: &str| eprintln!("{what}: {:?}", t0.elapsed());

    step("staging deployed");
    // Log in; the pipeline shows every stage.
    b.goto(&format!("{ui}/login"));
    b.type_into("#token", TOKEN);
    b.click("#login");
    step("login page");
    b.wait_text("#user", "alice");
    step("pipeline");
    b.wait_text("#tag-backend-staging", STAGING);
    b.wait_text("#tag-backend-production", "production-v0.0.0-0000000-0");

    step("live build");
    // A registry push shows up without a reload.
    b.script("window.ferryMarker = 42;");
    let build = "develop-v0.0.2-b2c3d4e-1738870000";
    s.reg.push("org/backend", build);
    b.wait_text("#tag-backend-develop", build);
    assert_eq!(
        b.script("return window.ferryMarker;"),
        42,
        "the page was reloaded"
    );

    step("promote");
    // Promote staging → production: the preview is the CLI's dry run.
    b.click("#promote-backend-production button");
    let preview: serde_json::Value = serde_json::from_str(&b.text("#preview")).unwrap();
    let cli = cli_dry_run(&s);
    for k in [
        "app",
        "from",
        "to",
        "source_tag",
        "digest",
        "version",
        "target_image",
    ] {
        assert_eq!(preview[k], cli[k], "{k}");
    }
    // The record's name carries the promotion time ({ts}); the rest is the same.
    let no_ts = |v: &serde_json::Value| v.as_str().unwrap().rsplit_once('-').unwrap().0.to_string();
    assert_eq!(no_ts(&preview["record_path"]), no_ts(&cli["record_path"]));
    assert!(
        remote_log(&s.git, &s.repo, "%B")
            .matches("Ferry-Kind: promotion")
            .count()
            == 0
    );
    step("confirm promotion");
    b.click("#confirm-button");
    b.wait("#done");
    check_promotion(&s, preview["digest"].as_str().unwrap());
    b.goto(&ui);
    b.wait_text("#tag-backend-production", "production-v0.0.1-a1b2c3d-");
    // The delivery figures count the promotion (ferry metrics dora, docs/metrics.md).
    b.wait_text("#dora-backend", "1 deployments");
    shot(&b, "dashboard-pipeline.png");

    step("rollback");
    // Roll production back with a reason; the hold shows.
    b.type_into(
        "#rollback-backend-production input[name=reason]",
        "p99 latency",
    );
    b.click("#rollback-backend-production button");
    b.wait("#preview");
    b.click("#confirm-button");
    b.wait("#done");
    wait_remote(&s, PROD_FILE, "production-v0.0.0-0000000-0");
    let msg = &messages(&s)[0];
    for t in [
        "Ferry-Kind: rollback",
        "Ferry-By: alice",
        "Ferry-Reason: p99 latency",
    ] {
        assert!(msg.contains(t), "missing {t} in {msg}");
    }
    b.goto(&ui);
    let held = b.wait_text("#held-backend-production", "alice");
    assert!(
        held.contains("p99 latency") && held.contains("production-v0.0.0-0000000-0"),
        "{held}"
    );
    step("history");
    b.goto(&format!("{ui}/history/backend/production"));
    b.wait_text("#history", "rollback");
    shot(&b, "dashboard-history.png");
}

/// `ferry promote backend --to production --dry-run -o json` on the same repository.
fn cli_dry_run(s: &Setup) -> serde_json::Value {
    let mut args: Vec<String> = [
        "promote",
        "backend",
        "--to",
        "production",
        "--dry-run",
        "-o",
        "json",
        "--by",
        "alice",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    // The daemon's source flags, with a state and cache of the CLI's own.
    let flags = &s.args[1..];
    let mut i = 0;
    while i + 1 < flags.len() {
        match flags[i].as_str() {
            "--repo" | "--path" | "--var" | "--secrets-dir" => {
                args.extend([flags[i].clone(), flags[i + 1].clone()]);
            }
            _ => {}
        }
        i += 1;
    }
    args.extend(["--state".into(), s.ws.join("cli.db").display().to_string()]);
    args.extend([
        "--cache-dir".into(),
        s.ws.join("cli-cache").display().to_string(),
    ]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = ferry(&argv);
    r.expect_code(0);
    r.json()
}

/// What `ferry promote` writes: the release commit and record, the registry tags.
fn check_promotion(s: &Setup, digest: &str) {
    let msg = messages(s)
        .into_iter()
        .find(|m| m.contains("Ferry-Kind: promotion"))
        .expect("a promotion commit");
    for t in [
        "Ferry-App: backend".to_string(),
        "Ferry-Env: production".into(),
        "Ferry-From-Env: staging".into(),
        "Ferry-Version: 0.0.1".into(),
        format!("Ferry-Digest: {digest}"),
        format!("Ferry-Source-Tag: {STAGING}"),
        "Ferry-Target-Tag: production".into(),
        "Ferry-Promoted-By: alice".into(),
        "Ferry-Next-Version: 0.0.2".into(),
    ] {
        assert!(msg.contains(&t), "missing {t} in {msg}");
    }
    let tag = msg
        .lines()
        .find_map(|l| l.strip_prefix("Ferry-Target-Tag: production-"))
        .map(|t| format!("production-{t}"))
        .expect("an immutable tag");
    assert_eq!(registry_digest(&s.reg.host, "org/backend", &tag), digest);
    assert_eq!(
        registry_digest(&s.reg.host, "org/backend", "production"),
        digest
    );
    assert_eq!(registry_digest(&s.reg.host, "org/backend", STAGING), digest);
    let record = remote(s, &format!("releases/backend/production/{tag}.yaml"));
    assert!(record.contains("promotedBy: \"alice\""), "{record}");
    assert_eq!(remote(s, "releases/backend/VERSION").trim(), "0.0.2");
    // The daemon ran production's automation after the action, as `ferry promote` does.
    wait_remote(s, PROD_FILE, &tag);
}

/// Screenshots go to docs/ with FERRY_UPDATE_SCREENSHOTS=1, else only checked to be PNGs.
fn shot(b: &common::webdriver::Browser, name: &str) {
    let png = b.screenshot();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    if std::env::var_os("FERRY_UPDATE_SCREENSHOTS").is_some() {
        let p = ferry_testbed::workspace_root().join("docs").join(name);
        std::fs::write(&p, png).unwrap();
    }
}

#[test]
fn read_only_open_leaves_the_views_open_and_actions_closed() {
    let Some(mut s) = setup("ui-open") else {
        return;
    };
    // --ui needs tokens unless the views are meant to be open: bad input, nothing started.
    let mut argv: Vec<String> = s.args.clone();
    argv.push("--ui".into());
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();
    let r = ferry(&args);
    r.expect_code(2);
    assert!(
        r.stderr.contains("--ui needs --ui-token-file"),
        "{}",
        r.stderr
    );

    s.args.extend(["--ui".into(), "--ui-read-only-open".into()]);
    let _d = s.daemon("ui-open.log");
    let (status, page) = http(s.port, "GET", "/ui", &[], b"");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"tag-backend-develop\""), "{page}");
    assert!(
        !page.contains("name=\"csrf\""),
        "anonymous readers get no action forms"
    );
    assert_eq!(
        http(s.port, "GET", "/ui/history/backend/staging", &[], b"").0,
        200
    );
    assert_eq!(
        http(s.port, "GET", "/ui/history/backend/qa", &[], b"").0,
        404
    );
    let head = remote_head(&s.git, &s.repo);
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let hold = b"action=hold&app=backend&env=staging&csrf=x";
    assert_eq!(http(s.port, "POST", "/ui/run", &form, hold).0, 401);
    assert_eq!(remote_head(&s.git, &s.repo), head);
}
