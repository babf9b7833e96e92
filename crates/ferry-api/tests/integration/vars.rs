//! `--var` / `--vars-file` handling.

use std::fs;

use ferry_api::{LoadErrorKind, Vars, load_dir};

#[test]
fn dotenv_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("vars.env");
    fs::write(
        &f,
        "# registry settings\nimage_registry=ghcr.io/acme\nexport CLUSTER = prod\nQUOTED=\"a b\" # c\nEMPTY=\n",
    )
    .unwrap();
    let v = Vars::from_cli::<&std::path::Path>(&["CLUSTER=override".to_string()], &[&f]).unwrap();
    assert_eq!(v.get("image_registry"), Some("ghcr.io/acme"));
    assert_eq!(v.get("CLUSTER"), Some("override"));
    assert_eq!(v.get("QUOTED"), Some("a b"));
    assert_eq!(v.get("EMPTY"), Some(""));
}

#[test]
fn bad_dotenv_lines_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("vars.env");
    fs::write(&f, "A=1\n\nthis line is wrong\n9BAD=x\nB=\"open\n").unwrap();
    let mut v = Vars::new();
    let errs = v.load_file(&f).unwrap_err();
    let file = f.display().to_string();
    let lines: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        vec![
            format!("{file}:3: invalid line in vars file: expected KEY=VALUE"),
            format!("{file}:4: invalid variable name \"9BAD\": must match [_a-zA-Z][_a-zA-Z0-9]*"),
            format!("{file}:5: variable B: unterminated double quote"),
        ]
    );
    assert!(matches!(errs.0[0].kind, LoadErrorKind::Vars(_)));
}

#[test]
fn yaml_and_json_files() {
    let dir = tempfile::tempdir().unwrap();
    let y = dir.path().join("vars.yaml");
    fs::write(
        &y,
        "image_registry: ghcr.io/acme\nreplicas: 3\nversion: 1.10\nflag: true\n",
    )
    .unwrap();
    let j = dir.path().join("vars.json");
    fs::write(&j, "{\"cluster\": \"prod\"}").unwrap();
    let v = Vars::from_cli(&[], &[&y, &j]).unwrap();
    assert_eq!(v.get("image_registry"), Some("ghcr.io/acme"));
    assert_eq!(v.get("replicas"), Some("3"));
    assert_eq!(v.get("version"), Some("1.10"));
    assert_eq!(v.get("flag"), Some("true"));
    assert_eq!(v.get("cluster"), Some("prod"));

    // Without an extension, a mapping is detected as YAML.
    let n = dir.path().join("vars");
    fs::write(&n, "# c\nimage_registry: ghcr.io/x\n").unwrap();
    let mut v = Vars::new();
    v.load_file(&n).unwrap();
    assert_eq!(v.get("image_registry"), Some("ghcr.io/x"));
}

#[test]
fn bad_yaml_vars_files() {
    let dir = tempfile::tempdir().unwrap();
    let y = dir.path().join("vars.yaml");
    fs::write(&y, "a: 1\nnested:\n  b: 2\n").unwrap();
    let errs = Vars::new().load_file(&y).unwrap_err();
    let s = errs.to_string();
    assert!(
        s.starts_with(&format!("{}:3: vars file must be a mapping", y.display())),
        "{s}"
    );

    fs::write(&y, "good: 1\nbad-name: 2\n").unwrap();
    let s = Vars::new().load_file(&y).unwrap_err().to_string();
    assert_eq!(
        s,
        format!(
            "{}:2: invalid variable name \"bad-name\": must match [_a-zA-Z][_a-zA-Z0-9]*",
            y.display()
        )
    );
}

#[test]
fn bad_var_args_do_not_echo_values_and_are_all_reported() {
    let errs = Vars::from_cli::<&std::path::Path>(
        &[
            "ok=1".to_string(),
            "no_equals".to_string(),
            "bad-name=x".to_string(),
        ],
        &[],
    )
    .unwrap_err();
    let lines: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        vec![
            "--var: invalid --var \"no_equals\": expected KEY=VALUE",
            "--var: invalid variable name \"bad-name\": must match [_a-zA-Z][_a-zA-Z0-9]*",
        ]
    );
}

#[test]
fn missing_vars_file() {
    let dir = tempfile::tempdir().unwrap();
    let errs = Vars::new()
        .load_file(&dir.path().join("nope.env"))
        .unwrap_err();
    assert!(matches!(errs.0[0].kind, LoadErrorKind::Io(_)));
}

#[test]
fn vars_file_feeds_load() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("cluster.env");
    fs::write(&f, "image_registry=registry.local:5000\n").unwrap();
    let tree = dir.path().join("tree");
    fs::create_dir_all(&tree).unwrap();
    fs::write(
        tree.join("r.yaml"),
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata: {name: r}\nspec: {image: '${image_registry}/app', interval: 1m}\n",
    )
    .unwrap();
    let v = Vars::from_cli::<&std::path::Path>(&[], &[&f]).unwrap();
    let set = load_dir(&tree, &v).unwrap();
    assert_eq!(
        set.image_repositories[0].spec.image,
        "registry.local:5000/app"
    );
}
