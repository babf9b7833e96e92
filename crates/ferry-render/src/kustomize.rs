//! Running the real kustomize as a subprocess: `kustomize build`, else `kubectl kustomize`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::RenderError;

/// The kustomize binary to run, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kustomize {
    program: PathBuf,
    /// `kubectl kustomize` instead of `kustomize build`.
    kubectl: bool,
}

impl Kustomize {
    /// `explicit` (`--kustomize`, `FERRY_KUSTOMIZE`), else `kustomize` on `PATH`, else `kubectl`
    /// on `PATH` (which embeds kustomize). `None` when there is none.
    pub fn find(explicit: Option<&Path>) -> Option<Kustomize> {
        if let Some(p) = explicit {
            if p.components().count() > 1 && !p.is_file() {
                return None;
            }
            let kubectl = p.file_name().is_some_and(|n| n == "kubectl");
            return Some(Kustomize {
                program: p.to_path_buf(),
                kubectl,
            });
        }
        if let Some(p) = on_path("kustomize") {
            return Some(Kustomize {
                program: p,
                kubectl: false,
            });
        }
        on_path("kubectl").map(|p| Kustomize {
            program: p,
            kubectl: true,
        })
    }

    /// What is run, for messages: `kustomize build` or `kubectl kustomize`.
    pub fn describe(&self) -> String {
        let verb = if self.kubectl { "kustomize" } else { "build" };
        format!("{} {verb}", self.program.display())
    }

    /// What identifies this kustomize for the render cache: its path, size and modification
    /// time (an upgrade in place misses the cache).
    pub fn identity(&self) -> String {
        let meta = std::fs::metadata(&self.program).ok().or_else(|| {
            on_path(&self.program.to_string_lossy()).and_then(|p| std::fs::metadata(p).ok())
        });
        let stamp = meta.map(|m| {
            let mtime = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            format!("{}:{mtime}", m.len())
        });
        format!("{} {}", self.describe(), stamp.unwrap_or_default())
    }

    /// Builds `dir` (load restrictions off, as kustomize-controller builds; the caller keeps
    /// every path inside the source root). Fails on a non-zero exit or after `timeout`.
    pub fn build(&self, dir: &Path, timeout: Duration) -> Result<String, RenderError> {
        let mut cmd = Command::new(&self.program);
        if self.kubectl {
            cmd.arg("kustomize");
        } else {
            cmd.arg("build");
        }
        cmd.arg("--load-restrictor")
            .arg("LoadRestrictionsNone")
            .arg(dir)
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| RenderError::Spawn {
            program: self.program.clone(),
            error: e.to_string(),
        })?;
        let out = child.stdout.take().map(reader);
        let err = child.stderr.take().map(reader);
        let start = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if start.elapsed() > timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(RenderError::Build(format!(
                        "{} timed out after {}s",
                        self.describe(),
                        timeout.as_secs()
                    )));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                Err(e) => return Err(RenderError::Build(e.to_string())),
            }
        };
        let stdout = out.and_then(|h| h.join().ok()).unwrap_or_default();
        let stderr = err.and_then(|h| h.join().ok()).unwrap_or_default();
        if status.success() {
            Ok(stdout)
        } else {
            Err(RenderError::Build(clean_stderr(&stderr)))
        }
    }
}

fn reader<R: Read + Send + 'static>(mut r: R) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// kustomize's (or kubectl's) message, without kubectl's log prefix and the temp paths noise.
fn clean_stderr(stderr: &str) -> String {
    let text = stderr.trim();
    let text = match text.find("err=\"") {
        Some(i) => text[i + 5..].trim_end_matches('"'),
        None => text.strip_prefix("Error: ").unwrap_or(text),
    };
    text.replace("\\\"", "\"").replace("\\'", "'")
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_log_prefix_is_removed() {
        let s = "E1205 07:19:33.98 11085 run.go:72] \"command failed\" err=\"accumulating resources: x\"\n";
        assert_eq!(clean_stderr(s), "accumulating resources: x");
        assert_eq!(clean_stderr("Error: missing file\n"), "missing file");
    }
}
