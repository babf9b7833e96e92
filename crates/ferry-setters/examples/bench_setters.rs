//! Generates a tree of 10,000 YAML files (1,000 with setter markers) and times `apply_tree`.
//!
//! Usage: `cargo run --release -p ferry-setters --example bench_setters [DIR]`
//! (DIR must be empty or absent; a temp dir is used otherwise).

use std::fs;
use std::path::PathBuf;
use std::time::Instant;

use ferry_setters::{ImageRef, PolicyValues, WriteMode, apply_tree};

const FILES: usize = 10_000;
const MARKED_EVERY: usize = 10;

fn manifest(i: usize, marked: bool) -> String {
    let comment = if marked {
        format!(" # {{\"$imagepolicy\": \"bench:app{}\"}}", i % 50)
    } else {
        String::new()
    };
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\n  namespace: bench\n  labels:\n    app: app-{i}\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: app-{i}\n  template:\n    metadata:\n      labels:\n        app: app-{i}\n    spec:\n      containers:\n      - name: app\n        image: registry.example/app{}:1.0.0{comment}\n        ports:\n        - containerPort: 8080\n        env:\n        - name: MODE\n          value: production\n",
        i % 50
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tmp;
    let root: PathBuf = match std::env::args_os().nth(1) {
        Some(d) => PathBuf::from(d),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let t = Instant::now();
    for i in 0..FILES {
        let dir = root.join(format!("env-{:02}/app-{:03}", i % 10, i / 100));
        fs::create_dir_all(&dir)?;
        fs::write(
            dir.join(format!("deploy-{i}.yaml")),
            manifest(i, i % MARKED_EVERY == 0),
        )?;
    }
    println!(
        "generated {FILES} files ({} marked) in {} ms under {}",
        FILES / MARKED_EVERY,
        t.elapsed().as_millis(),
        root.display()
    );
    let mut values = PolicyValues::new();
    for p in 0..50 {
        values.insert(
            format!("bench:app{p}"),
            ImageRef {
                name: format!("registry.example/app{p}"),
                tag: "1.0.1".into(),
                digest: None,
            },
        );
    }
    let t = Instant::now();
    let dry = apply_tree(&root, &values, WriteMode::DryRun)?;
    println!(
        "dry run: {} files changed in {} ms",
        dry.files.len(),
        t.elapsed().as_millis()
    );
    let t = Instant::now();
    let res = apply_tree(&root, &values, WriteMode::Write)?;
    println!(
        "apply_tree: {} files, {} changes ({} distinct) written in {} ms",
        res.files.len(),
        res.files
            .values()
            .flat_map(|o| o.values())
            .map(Vec::len)
            .sum::<usize>(),
        res.changes().len(),
        t.elapsed().as_millis()
    );
    let t = Instant::now();
    let again = apply_tree(&root, &values, WriteMode::Write)?;
    println!(
        "second run (no changes): {} files changed in {} ms",
        again.files.len(),
        t.elapsed().as_millis()
    );
    Ok(())
}
