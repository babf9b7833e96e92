//! Commits one change and pushes it through ferry-git's cache (for benchmarks against the
//! plain git CLI).
//!
//! ```text
//! commit_push <url> <branch> <cache-dir> <file> <content>
//! ```
//! Credentials come from files named by environment variables, never from argv:
//! `FERRY_GIT_USERNAME`, `FERRY_GIT_PASSWORD_FILE`, `FERRY_GIT_SSH_KEY_FILE`,
//! `FERRY_GIT_KNOWN_HOSTS_FILE`, `FERRY_GIT_CA_FILE`.

use std::process::ExitCode;
use std::time::Instant;

use ferry_git::{
    CloneCache, CommitSpec, GitAuth, Remote, Signature, UpdateOutcome, UpdatePlan, update_and_push,
};

fn file_env(name: &str) -> Result<Option<Vec<u8>>, String> {
    match std::env::var_os(name) {
        None => Ok(None),
        Some(p) => std::fs::read(&p)
            .map(Some)
            .map_err(|e| format!("{name}: reading {}: {e}", p.to_string_lossy())),
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, branch, cache_dir, file, content] = args.as_slice() else {
        return Err("usage: commit_push <url> <branch> <cache-dir> <file> <content>".into());
    };
    let text = |v: Option<Vec<u8>>| v.map(|b| String::from_utf8_lossy(&b).trim_end().to_string());
    let auth = GitAuth {
        username: std::env::var("FERRY_GIT_USERNAME").ok(),
        password: text(file_env("FERRY_GIT_PASSWORD_FILE")?),
        ssh_identity: file_env("FERRY_GIT_SSH_KEY_FILE")?,
        known_hosts: file_env("FERRY_GIT_KNOWN_HOSTS_FILE")?,
        ca_cert: file_env("FERRY_GIT_CA_FILE")?,
        ..GitAuth::default()
    };
    let start = Instant::now();
    let cache = CloneCache::new(cache_dir).map_err(|e| e.to_string())?;
    let remote = Remote::new(url.clone(), auth);
    let outcome = update_and_push(&cache, &remote, &UpdatePlan::new(branch.clone()), |dir| {
        std::fs::write(dir.join(file), format!("{content}\n"))?;
        Ok::<_, std::io::Error>(Some(CommitSpec {
            message: format!("Set {file}"),
            trailers: vec![],
            author: Signature {
                name: "ferry".into(),
                email: "ferry@example.invalid".into(),
            },
            signing: None,
        }))
    })
    .map_err(|e| e.to_string())?;
    let ms = start.elapsed().as_millis();
    match outcome {
        UpdateOutcome::Pushed { sha, attempts, .. } => {
            println!("{sha}");
            eprintln!("pushed {sha} in {ms} ms ({attempts} attempt(s))");
        }
        UpdateOutcome::NothingToDo { head } => {
            println!("{head}");
            eprintln!("nothing to do at {head} ({ms} ms)");
        }
        UpdateOutcome::WouldPush { diff, .. } => print!("{diff}"),
    }
    Ok(())
}
