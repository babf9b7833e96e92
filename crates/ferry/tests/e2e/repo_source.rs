//! Reading the Flux objects from a private Git repository: `--repo URL --ref --path` with
//! `--repo-secret NAMESPACE/NAME` (Flux GitRepository Secret keys from `--secrets-dir`), over the
//! real git http-backend with Basic auth. Without the secret the load fails with exit 1, and no
//! credentials are printed.

use crate::common::*;
use ferry_testbed::git::git_servers;
use ferry_testbed::registry::{Auth, registry};

#[test]
fn objects_load_from_a_private_repo_with_repo_secret() {
    let Some(env) = git_servers() else { return };
    let Some(reg) = registry(Auth::None, false) else {
        return;
    };
    let ws = Workspace::new();
    let repo_name = unique("objects");
    push(&reg, &repo_name, "staging-v1.0.0-aaaaaaa-10");
    push(&reg, &repo_name, "staging-v1.0.1-bbbbbbb-20");
    let git_repo = env.new_repo("private-objects", false).unwrap();
    let tree = ws.join("tree");
    write_tree(
        &tree,
        &[(
            "flux/objects.yaml",
            &docs(&[
                image_repository(
                    "flux-system",
                    "app",
                    &format!("{}/{repo_name}", reg.host),
                    "",
                ),
                image_policy(
                    "flux-system",
                    "app",
                    "flux-system",
                    "app",
                    &seed_policy_spec("staging"),
                ),
            ]),
        )],
    );
    push_tree(&env, &git_repo, &tree);
    ws.secret(
        "flux-system",
        "git-auth",
        &[
            ("username", env.user.as_bytes()),
            ("password", env.password.as_bytes()),
        ],
    );
    let url = env.http(&git_repo);
    let secrets = ws.secrets_str();
    let cache = ws.cache_str();

    // Without credentials the private repo cannot be read: exit 1, an error naming the
    // repository, and no state written.
    let r = ws.ferry(&[
        "scan",
        "--repo",
        &url,
        "--ref",
        "main",
        "--path",
        "flux",
        "--cache-dir",
        &cache,
    ]);
    r.expect_code(1);
    assert!(r.stderr.contains("127.0.0.1"), "{}", r.stderr);
    r.assert_no_secret(&env.password);
    assert!(
        !ws.state().exists(),
        "state written although nothing was loaded"
    );

    // With --repo-secret the objects load and the policy resolves.
    let r = ws.ferry(&[
        "scan",
        "--repo",
        &url,
        "--ref",
        "main",
        "--path",
        "flux",
        "--secrets-dir",
        &secrets,
        "--repo-secret",
        "flux-system/git-auth",
        "--cache-dir",
        &cache,
    ]);
    r.expect_code(0);
    r.assert_no_secret(&env.password);
    assert_eq!(
        ws.latest("flux-system", "app").unwrap(),
        format!("{}/{repo_name}:staging-v1.0.1-bbbbbbb-20", reg.host)
    );

    // A malformed --repo-secret is bad input.
    ws.ferry(&[
        "scan",
        "--repo",
        &url,
        "--secrets-dir",
        &secrets,
        "--repo-secret",
        "git-auth",
    ])
    .expect_code(2);
}
