//! `ferry controller --ui --notify-config` against a real control plane, registry and git
//! server: the dashboard on the controller's `--listen` address, over the objects the controller
//! lists from the cluster. 401 without a token; the pipeline with one; a hold from the dashboard
//! lands in Git by the token's name, and a local receiver gets exactly one notification for it.

use std::time::Duration;

use crate::common::daemon::http;
use crate::common::receiver::Receiver;
use crate::common::{NEW_STAGING, Seed, Workspace, poll, remote_file, remote_log};
use crate::controller::{Controller, STAGING_FILE, apply_seed_with_credentials, file, wait_for};
use crate::dashboard::csrf_of;
use ferry_testbed::cluster::PrivateCluster;
use ferry_testbed::git::git_servers;
use ferry_testbed::registry::{Auth, registry};

const TOKEN: &str = "tok-ops-7f3e";

fn holds_of(receiver: &Receiver) -> Vec<serde_json::Value> {
    receiver
        .bodies()
        .into_iter()
        .filter(|m| m["kind"] == "hold")
        .collect()
}

#[test]
fn controller_dashboard_holds_in_git_and_notifies_once() {
    let (Some(reg), Some(git)) = (registry(Auth::None, false), git_servers()) else {
        return;
    };
    let Some(cluster) = PrivateCluster::start(&format!("ctlui-{}", std::process::id())) else {
        return;
    };
    let c = &cluster.env;
    let seed = Seed::with_http_credentials(&reg, &git, "ctlui");
    apply_seed_with_credentials(c, &seed, &git);
    let receiver = Receiver::start();
    let config = file(
        &seed.ws,
        "notify.yaml",
        format!(
            "receivers:\n  - name: ops\n    provider: webhook\n    url: {}\n    events: [hold, unhold]\n",
            receiver.url
        )
        .as_bytes(),
    );
    let tokens = file(&seed.ws, "ui-tokens", format!("ops:{TOKEN}\n").as_bytes());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let ctl = Controller::start(
        c,
        &seed.ws,
        &[
            "--listen",
            &listen,
            "--ui",
            "--ui-token-file",
            &tokens,
            "--notify-config",
            &config,
        ],
    );
    wait_for(
        c,
        "staging backend pushed",
        Duration::from_secs(90),
        &ctl,
        || {
            remote_file(&git, &seed.repo, STAGING_FILE)
                .contains(NEW_STAGING)
                .then_some(())
        },
    );

    // Reading needs the token; with it, the pipeline of the cluster's objects.
    assert_eq!(http(port, "GET", "/ui", &[], b"").0, 401);
    let bearer = format!("Bearer {TOKEN}");
    let auth = [("Authorization", bearer.as_str())];
    let page = poll(Duration::from_secs(60), || {
        let (status, page) = http(port, "GET", "/ui", &auth, b"");
        (status == 200 && page.contains(NEW_STAGING)).then_some(page)
    })
    .unwrap_or_else(|| panic!("no pipeline with {NEW_STAGING}\n{}", ctl.log()));
    assert!(page.contains("id=\"tag-backend-staging\""), "{page}");
    assert!(page.contains("id=\"drift-backend-staging\""), "{page}");
    assert!(page.contains("id=\"gates-backend-staging\""), "{page}");
    assert!(!page.contains(TOKEN));

    // A hold from the dashboard: one commit by the token's name, one notification.
    let form = format!(
        "action=hold&app=backend&env=staging&reason=freeze&csrf={}",
        csrf_of(&page)
    );
    let headers = [
        auth[0],
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    let (status, done) = http(port, "POST", "/ui/run", &headers, form.as_bytes());
    assert_eq!(status, 200, "{done}\n{}", ctl.log());
    let msg = remote_log(&git, &seed.repo, "%B%x00");
    let newest = msg.split('\0').next().unwrap_or_default();
    for t in ["Ferry-Kind: hold", "Ferry-By: ops", "Ferry-Reason: freeze"] {
        assert!(newest.contains(t), "missing {t} in {newest}");
    }
    let holds = poll(Duration::from_secs(60), || {
        let h = holds_of(&receiver);
        (!h.is_empty()).then_some(h)
    })
    .unwrap_or_else(|| panic!("no hold notification\n{}", ctl.log()));
    let m = &holds[0];
    assert_eq!(
        (m["app"].as_str(), m["env"].as_str()),
        (Some("backend"), Some("staging"))
    );
    assert!(
        m["reason"].as_str().unwrap_or_default().contains("freeze"),
        "{m}"
    );
    // Later passes find the same hold in Git and send nothing again.
    let passes_before = ctl.log().matches("pass done").count();
    let later = poll(Duration::from_secs(90), || {
        (ctl.log().matches("pass done").count() > passes_before).then_some(())
    });
    assert!(later.is_some(), "no later pass\n{}", ctl.log());
    assert_eq!(holds_of(&receiver).len(), 1, "{:#?}", receiver.bodies());
}

/// Bad input is refused before the controller connects to anything (exit 2, naming the flag or
/// the file).
#[test]
fn controller_ui_bad_input_is_refused_before_starting() {
    let ws = Workspace::new();
    let base = [
        "controller",
        "--kubeconfig",
        "/nonexistent",
        "--listen",
        "127.0.0.1:0",
    ];
    let run = ws.ferry(&[&base[..], &["--ui"]].concat());
    run.expect_code(2);
    assert!(
        run.stderr.contains("--ui needs --ui-token-file"),
        "{}",
        run.stderr
    );
    let tokens = ws.join("tokens");
    std::fs::write(&tokens, "no-colon-here\n").expect("write");
    let tokens = tokens.display().to_string();
    let run = ws.ferry(&[&base[..], &["--ui", "--ui-token-file", &tokens]].concat());
    run.expect_code(2);
    assert!(
        run.stderr
            .contains(&format!("{tokens} line 1: expected NAME:TOKEN")),
        "{}",
        run.stderr
    );
    // --ui needs --listen (clap: exit 2).
    ws.ferry(&["controller", "--ui", "--ui-read-only-open"])
        .expect_code(2);
}
