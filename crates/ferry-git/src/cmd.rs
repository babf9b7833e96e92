//! One way to run git: a scrubbed environment, config through `GIT_CONFIG_*` variables, a
//! timeout that kills the whole process group, and redacted output in every error.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::auth::Session;
use crate::error::{GitError, classify, redact};

/// Config every command gets: no hooks, no fsmonitor, no background maintenance racing the
/// cache lock, no pager, no interactive editor.
const BASE_CONFIG: &[(&str, &str)] = &[
    ("core.hooksPath", "/dev/null"),
    ("core.fsmonitor", "false"),
    ("core.pager", "cat"),
    ("core.editor", "false"),
    ("gc.auto", "0"),
    ("maintenance.auto", "false"),
    ("fetch.writeCommitGraph", "false"),
    ("init.defaultBranch", "main"),
    ("advice.detachedHead", "false"),
    ("commit.gpgSign", "false"),
    ("tag.gpgSign", "false"),
    ("credential.helper", ""),
    ("protocol.version", "2"),
];

/// The captured result of a git command.
pub(crate) struct Output {
    pub code: i32,
    pub stdout: Vec<u8>,
    /// Redacted.
    pub stderr: String,
}

impl Output {
    pub fn ok(&self) -> bool {
        self.code == 0
    }

    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stdout_trim(&self) -> String {
        self.stdout_str().trim().to_string()
    }
}

/// A git invocation being built.
pub(crate) struct Git<'a> {
    dir: Option<&'a Path>,
    session: Option<&'a Session>,
    args: Vec<OsString>,
    env: Vec<(String, String)>,
    config: Vec<(String, String)>,
    stdin: Option<Vec<u8>>,
    timeout: Option<Duration>,
    program: &'a str,
}

impl<'a> Git<'a> {
    /// `git <args>` in `dir`.
    pub fn new(dir: Option<&'a Path>) -> Self {
        Git {
            dir,
            session: None,
            args: Vec::new(),
            env: Vec::new(),
            config: Vec::new(),
            stdin: None,
            timeout: None,
            program: "git",
        }
    }

    /// Uses the remote's credentials, URL redaction and timeout.
    pub fn remote(mut self, s: &'a Session) -> Self {
        self.session = Some(s);
        self.timeout = Some(s.timeout);
        self
    }

    pub fn arg(mut self, a: impl Into<OsString>) -> Self {
        self.args.push(a.into());
        self
    }

    pub fn args<I, S>(mut self, it: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(it.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn config(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.config.push((k.into(), v.into()));
        self
    }

    pub fn stdin(mut self, data: Vec<u8>) -> Self {
        self.stdin = Some(data);
        self
    }

    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }

    fn subcommand(&self) -> String {
        self.args
            .iter()
            .map(|a| a.to_string_lossy())
            .find(|a| !a.starts_with('-'))
            .map(|s| s.into_owned())
            .unwrap_or_else(|| "?".into())
    }

    fn secrets(&self) -> &[String] {
        self.session.map(|s| s.secrets.as_slice()).unwrap_or(&[])
    }

    fn url(&self) -> String {
        self.session.map(|s| s.display.clone()).unwrap_or_default()
    }

    /// Runs and fails on a non-zero exit.
    pub fn run(self) -> Result<Output, GitError> {
        let sub = self.subcommand();
        let url = self.url();
        let out = self.output()?;
        if out.ok() {
            Ok(out)
        } else {
            Err(GitError::Command {
                subcommand: sub,
                code: out.code,
                url,
                kind: classify(&out.stderr),
                stderr: out.stderr.trim().to_string(),
            })
        }
    }

    /// Turns a finished command into the crate's error (for callers that inspect the code first).
    pub fn failure(sub: &str, url: &str, out: &Output) -> GitError {
        GitError::Command {
            subcommand: sub.to_string(),
            code: out.code,
            url: url.to_string(),
            kind: classify(&out.stderr),
            stderr: out.stderr.trim().to_string(),
        }
    }

    /// Runs and returns the output whatever the exit code (errors only for spawn/timeout).
    /// The process to run: a scrubbed environment, Ferry's git config, pipes, and a process
    /// group of its own that dies with this thread.
    fn command(&self) -> Command {
        let mut cmd = Command::new(self.program);
        if let Some(d) = &self.dir {
            cmd.current_dir(d);
        }
        // Inherited GIT_* variables (GIT_DIR, GIT_SSL_CAINFO, GIT_ASKPASS, ...) would override
        // what we set below; SSH_ASKPASS could prompt. Drop them all.
        for (k, _) in std::env::vars_os() {
            let ks = k.to_string_lossy();
            if ks.starts_with("GIT_") || ks.starts_with("SSH_ASKPASS") {
                cmd.env_remove(&k);
            }
        }
        cmd.env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_OPTIONAL_LOCKS", "0")
            .env("GCM_INTERACTIVE", "never")
            .env("LC_ALL", "C")
            .env("LANGUAGE", "C");
        let mut config: Vec<(String, String)> = BASE_CONFIG
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Some(s) = &self.session {
            config.extend(s.config.iter().cloned());
            for (k, v) in &s.env {
                cmd.env(k, v);
            }
        }
        config.extend(self.config.iter().cloned());
        cmd.env("GIT_CONFIG_COUNT", config.len().to_string());
        for (i, (k, v)) in config.iter().enumerate() {
            cmd.env(format!("GIT_CONFIG_KEY_{i}"), k);
            cmd.env(format!("GIT_CONFIG_VALUE_{i}"), v);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.args(&self.args)
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Own process group: a timeout kills git and its helpers (ssh, remote-https).
            .process_group(0);
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent. It makes the
        // kernel SIGKILL git if this thread dies (e.g. `kill -9` of the daemon), so no orphan
        // keeps writing into a cache entry whose lock we no longer hold.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
                Ok(())
            });
        }
        cmd
    }

    pub fn output(self) -> Result<Output, GitError> {
        let sub = self.subcommand();
        let url = self.url();
        let secrets = self.secrets().to_vec();
        let mut cmd = self.command();
        tracing::debug!(program = self.program, args = ?self.args, dir = ?self.dir, url = %url, "git");
        let mut child = cmd.spawn().map_err(|source| GitError::Spawn {
            program: self.program.to_string(),
            source,
        })?;
        let pid = child.id();
        let stdin_thread = match (self.stdin, child.stdin.take()) {
            (Some(data), Some(mut pipe)) => Some(std::thread::spawn(move || {
                let _ = pipe.write_all(&data);
            })),
            _ => None,
        };
        let out_thread = drain(child.stdout.take());
        let err_thread = drain(child.stderr.take());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let status = match self.timeout {
            Some(t) => match rx.recv_timeout(t) {
                Ok(s) => s,
                Err(_) => {
                    // SAFETY: plain syscall; pid is our child's process group id.
                    unsafe {
                        libc::killpg(pid as libc::pid_t, libc::SIGKILL);
                    }
                    let _ = rx.recv();
                    let _ = out_thread.join();
                    let _ = err_thread.join();
                    return Err(GitError::Timeout {
                        subcommand: sub,
                        url,
                        after: t,
                    });
                }
            },
            None => rx
                .recv()
                .unwrap_or_else(|_| Err(std::io::Error::other("wait thread died"))),
        }
        .map_err(|source| GitError::Spawn {
            program: self.program.to_string(),
            source,
        })?;
        if let Some(t) = stdin_thread {
            let _ = t.join();
        }
        let stdout = out_thread.join().unwrap_or_default();
        let stderr_raw = err_thread.join().unwrap_or_default();
        let stderr = redact(&String::from_utf8_lossy(&stderr_raw), &secrets);
        let code = status.code().unwrap_or(-1);
        if code != 0 {
            tracing::debug!(subcommand = %sub, code, stderr = %stderr.trim(), "git exited non-zero");
        }
        Ok(Output {
            code,
            stdout,
            stderr,
        })
    }
}

/// Runs another program (gpg, ssh-keygen) with the same hygiene; used by signing.
pub(crate) fn program<'a>(name: &'static str, dir: Option<&'a Path>) -> Git<'a> {
    let mut g = Git::new(dir);
    g.program = name;
    g
}

/// Reads a child's pipe to the end on a thread of its own (so neither pipe fills and blocks).
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut b = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut b);
        }
        b
    })
}
