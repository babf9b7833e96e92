//! Bad input for `ferry scan` (issue 2): invalid regex, invalid semver range, two policy kinds,
//! missing Secret or key, wrong password (401), unreachable registry, TLS with an unknown CA, and
//! a registry answering garbage JSON or a 500 storm (a fault proxy in front of the real registry).
//!
//! All of them in one run, beside good objects. Each gets a one-line reason on its own object
//! (visible in `get images`), the good objects are processed, the exit is non-zero, the state stays
//! readable and consistent, and no credential appears in any output (even at trace verbosity).

use crate::common::*;
use ferry_testbed::faults::{Fault, FaultProxy, Rule};
use ferry_testbed::registry::{Auth, registry};

/// A port with nothing listening on 127.0.0.1.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn every_bad_input_fails_only_its_own_object() {
    let Some(plain) = registry(Auth::None, false) else {
        return;
    };
    let Some(basic) = registry(Auth::Basic, true) else {
        return;
    };
    let Some(token) = registry(Auth::Token, true) else {
        return;
    };
    let ws = Workspace::new();
    let password = basic.password.clone().unwrap();
    let user = basic.user.clone().unwrap();
    let wrong_password = "wrong-Pa55word-c4f7e1";

    let good = unique("bad-good");
    push(&plain, &good, "develop-v1.0.0-aaaaaaa-100");
    push(&plain, &good, "develop-v1.0.1-bbbbbbb-200");
    let protected = unique("bad-basic");
    push(&basic, &protected, "1.0.0");
    let garbage = unique("garbage");
    push(&plain, &garbage, "1.0.0");
    let storm = unique("storm");
    push(&plain, &storm, "1.0.0");
    let proxy = FaultProxy::start(&plain.host).unwrap();
    proxy.set_rules(vec![
        Rule::new(format!("/v2/{garbage}/tags/list"), Fault::Garbage),
        Rule::new(format!("/v2/{storm}/tags/list"), Fault::Status(500)),
    ]);

    ws.secret(
        "ns",
        "good-cred",
        &[(
            ".dockerconfigjson",
            &dockerconfigjson(&basic.host, &user, &password),
        )],
    );
    ws.secret(
        "ns",
        "wrong-cred",
        &[(
            ".dockerconfigjson",
            &dockerconfigjson(&basic.host, &user, wrong_password),
        )],
    );
    ws.secret("ns", "no-key", &[("username", user.as_bytes())]);
    ws.secret("ns", "basic-ca", &[("ca.crt", &basic.ca_pem().unwrap())]);
    // A CA that did not sign the basic registry's certificate.
    ws.secret("ns", "other-ca", &[("ca.crt", &token.ca_pem().unwrap())]);

    let sec = |s: &str| format!("  secretRef:\n    name: {s}\n");
    let ca = |s: &str| format!("  certSecretRef:\n    name: {s}\n");
    let objects = docs(&[
        image_repository("ns", "good", &plain.image(&good), ""),
        image_policy("ns", "good", "ns", "good", &seed_policy_spec("develop")),
        image_policy(
            "ns",
            "bad-regex",
            "ns",
            "good",
            "  filterTags:\n    pattern: '^develop-(['\n  policy:\n    numerical:\n      order: asc\n",
        ),
        image_policy(
            "ns",
            "bad-semver",
            "ns",
            "good",
            "  policy:\n    semver:\n      range: 'not a range!!'\n",
        ),
        image_policy(
            "ns",
            "two-kinds",
            "ns",
            "good",
            "  policy:\n    semver:\n      range: '>=1.0.0'\n    alphabetical:\n      order: asc\n",
        ),
        image_repository(
            "ns",
            "missing-secret",
            &basic.image(&protected),
            &(sec("nope") + &ca("basic-ca")),
        ),
        image_repository(
            "ns",
            "missing-key",
            &basic.image(&protected),
            &(sec("no-key") + &ca("basic-ca")),
        ),
        image_repository(
            "ns",
            "wrong-password",
            &basic.image(&protected),
            &(sec("wrong-cred") + &ca("basic-ca")),
        ),
        image_repository(
            "ns",
            "unreachable",
            &format!("127.0.0.1:{}/x/y", closed_port()),
            "  timeout: 10s\n",
        ),
        image_repository(
            "ns",
            "unknown-ca",
            &basic.image(&protected),
            &(sec("good-cred") + &ca("other-ca")),
        ),
        image_repository("ns", "garbage", &format!("{}/{garbage}", proxy.host), ""),
        image_repository("ns", "storm", &format!("{}/{storm}", proxy.host), ""),
        // A good object behind credentials, to prove the password is really in play.
        image_repository(
            "ns",
            "protected",
            &basic.image(&protected),
            &(sec("good-cred") + &ca("basic-ca")),
        ),
    ]);
    let tree = ws.join("tree");
    write_tree(&tree, &[("objs.yaml", &objects)]);
    let t = tree.to_str().unwrap();
    let secrets = ws.secrets_str();

    // (object kind, name, expected reason, a word the one-line message must contain)
    let expected: &[(&str, &str, &str, &[&str])] = &[
        (
            "policy",
            "bad-regex",
            "InvalidPolicy",
            &["regular expression"],
        ),
        ("policy", "bad-semver", "InvalidPolicy", &["semver"]),
        ("policy", "two-kinds", "InvalidPolicy", &["at once"]),
        (
            "repository",
            "missing-secret",
            "AuthenticationFailed",
            &["not found"],
        ),
        (
            "repository",
            "missing-key",
            "AuthenticationFailed",
            &[".dockerconfigjson"],
        ),
        (
            "repository",
            "wrong-password",
            "",
            &["401", "unauthorized", "authentication"],
        ),
        ("repository", "unreachable", "", &["unreachable", "refused"]),
        ("repository", "unknown-ca", "", &["certificate", "tls"]),
        ("repository", "garbage", "", &["json", "decode", "invalid"]),
        ("repository", "storm", "", &["500"]),
    ];

    for round in 0..2 {
        let scan = ws.ferry(&["-vvv", "scan", "--dir", t, "--secrets-dir", &secrets]);
        scan.expect_code(1)
            .assert_no_secret(&password)
            .assert_no_secret(wrong_password);

        // The good objects are processed.
        assert_eq!(
            ws.latest("ns", "good").unwrap(),
            format!("{}:develop-v1.0.1-bbbbbbb-200", plain.image(&good))
        );
        let protected_repo = ws.object("repository", "ns", "protected");
        assert_eq!(
            protected_repo["ready"]["status"], "True",
            "{protected_repo:#}"
        );
        assert_eq!(protected_repo["lastScanResult"]["tagCount"], 1);

        let table = ws.ferry(&["get", "images", "all", "-A"]);
        table
            .expect_code(0)
            .assert_no_secret(&password)
            .assert_no_secret(wrong_password);
        for (kind, name, reason, words) in expected {
            let o = ws.object(kind, "ns", name);
            let ready = &o["ready"];
            assert_eq!(
                ready["status"], "False",
                "round {round}: {kind} {name}: {o:#}"
            );
            if !reason.is_empty() {
                assert_eq!(ready["reason"], *reason, "{kind} {name}: {o:#}");
            }
            let msg = ready["message"].as_str().unwrap();
            assert!(
                !msg.is_empty() && !msg.contains('\n'),
                "{kind} {name}: not one line: {msg:?}"
            );
            let lower = msg.to_lowercase();
            assert!(
                words.iter().any(|w| lower.contains(w)),
                "{kind} {name}: message {msg:?} has none of {words:?}"
            );
            // The reason is visible in the table, on that object's line.
            let row = table
                .stdout
                .lines()
                .find(|l| l.contains(&format!("/{name}\t")) || l.contains(&format!("/{name} ")))
                .unwrap_or_else(|| panic!("no row for {name} in\n{}", table.stdout));
            assert!(row.contains(msg), "row of {name} lacks its message: {row}");
            // And on stderr of the scan.
            assert!(
                scan.stderr.contains(&format!("ns/{name}:")),
                "{name} not reported:\n{}",
                scan.stderr
            );
        }
        for fmt in ["json", "yaml"] {
            ws.ferry(&["get", "images", "all", "-A", "-o", fmt])
                .expect_code(0)
                .assert_no_secret(&password)
                .assert_no_secret(wrong_password);
        }
    }

    // The 500 storm was retried a bounded number of times per scan, the garbage answered.
    let storm_hits = proxy.hits(1);
    assert!(
        (4..=20).contains(&storm_hits),
        "500 storm hit {storm_hits} times over 2 scans"
    );
    assert!(proxy.hits(0) >= 2, "garbage rule never hit");

    // Fix the inputs: the same state file recovers fully (it was never corrupted).
    let fixed = docs(&[
        image_repository("ns", "good", &plain.image(&good), ""),
        image_policy("ns", "good", "ns", "good", &seed_policy_spec("develop")),
        image_repository(
            "ns",
            "wrong-password",
            &basic.image(&protected),
            &(sec("good-cred") + &ca("basic-ca")),
        ),
    ]);
    write_tree(&tree, &[("objs.yaml", &fixed)]);
    ws.ferry(&["scan", "--dir", t, "--secrets-dir", &secrets])
        .expect_code(0)
        .assert_no_secret(&password);
    let all = ws.get_json("all");
    assert_eq!(
        all.as_array().unwrap().len(),
        3,
        "removed objects are forgotten: {all:#}"
    );
    let o = ws.object("repository", "ns", "wrong-password");
    assert_eq!(o["ready"]["status"], "True", "{o:#}");
}

#[test]
fn connection_resets_are_retried_then_reported() {
    let Some(plain) = registry(Auth::None, false) else {
        return;
    };
    let ws = Workspace::new();
    let repo = unique("reset");
    push(&plain, &repo, "1.0.0");
    let proxy = FaultProxy::start(&plain.host).unwrap();
    proxy.set_rules(vec![Rule::new(
        format!("/v2/{repo}/tags/list"),
        Fault::Reset,
    )]);
    let tree = ws.join("tree");
    write_tree(
        &tree,
        &[(
            "r.yaml",
            &image_repository(
                "ns",
                "reset",
                &format!("{}/{repo}", proxy.host),
                "  timeout: 20s\n",
            ),
        )],
    );
    let r = ws.ferry(&["scan", "--dir", tree.to_str().unwrap()]);
    r.expect_code(1);
    assert!(
        proxy.hits(0) >= 2,
        "a reset connection was not retried ({} tries)",
        proxy.hits(0)
    );
    let o = ws.object("repository", "ns", "reset");
    assert_eq!(o["ready"]["status"], "False");
    assert!(!o["ready"]["message"].as_str().unwrap().contains('\n'));
}
