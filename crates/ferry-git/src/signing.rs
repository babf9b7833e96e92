//! Commit signing with OpenPGP (gpg) or SSH (`ssh-keygen -Y sign`), with throw-away key
//! material: the key is imported into a private 0700 directory that is deleted afterwards.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::auth::{path_str, shell_quote, write_private};
use crate::cmd;
use crate::error::{GitError, redact};

/// A commit signing key, as found in a Flux `signingKey` Secret.
///
/// `Debug` never shows key material or passphrases.
#[derive(Clone, PartialEq, Eq)]
pub enum SigningKey {
    /// OpenPGP: an ASCII-armored secret key (Secret key `git.asc`) and its optional passphrase.
    Gpg {
        /// The armored secret key.
        armored: Vec<u8>,
        /// Its passphrase, if protected.
        passphrase: Option<String>,
    },
    /// SSH: an OpenSSH private key (Secret key `identity`) and its optional password.
    Ssh {
        /// The private key.
        private_key: Vec<u8>,
        /// Its password, if encrypted.
        password: Option<String>,
    },
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SigningKey::Gpg { passphrase, .. } => f
                .debug_struct("Gpg")
                .field("armored", &"<redacted>")
                .field("passphrase", &passphrase.as_ref().map(|_| "<redacted>"))
                .finish(),
            SigningKey::Ssh { password, .. } => f
                .debug_struct("Ssh")
                .field("private_key", &"<redacted>")
                .field("password", &password.as_ref().map(|_| "<redacted>"))
                .finish(),
        }
    }
}

/// Key material prepared for one `git commit -S`.
pub(crate) struct Signer {
    pub config: Vec<(String, String)>,
    pub env: Vec<(String, String)>,
    pub secrets: Vec<String>,
    gnupghome: Option<PathBuf>,
    _dir: tempfile::TempDir,
}

impl Drop for Signer {
    fn drop(&mut self) {
        // gpg starts an agent per home directory; stop it before the directory goes away.
        if let Some(home) = &self.gnupghome
            && let Some(h) = home.to_str()
        {
            let _ = cmd::program("gpgconf", None)
                .env("GNUPGHOME", h)
                .args(["--kill", "gpg-agent"])
                .timeout(std::time::Duration::from_secs(10))
                .output();
        }
    }
}

impl Signer {
    pub fn new(key: &SigningKey, scratch: &Path) -> Result<Signer, GitError> {
        // gpg-agent's socket lives in GNUPGHOME and Unix socket paths are limited to ~108
        // bytes: fall back to the system temp dir when the cache root is deep.
        let base = if scratch.as_os_str().len() > 60 {
            std::env::temp_dir()
        } else {
            scratch.to_path_buf()
        };
        std::fs::create_dir_all(&base).map_err(|e| GitError::io("create", &base, e))?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("sign-{}-", std::process::id()))
            .tempdir_in(&base)
            .map_err(|e| GitError::io("create a signing directory in", &base, e))?;
        match key {
            SigningKey::Gpg {
                armored,
                passphrase,
            } => Self::gpg(dir, armored, passphrase.as_deref()),
            SigningKey::Ssh {
                private_key,
                password,
            } => Self::ssh(dir, private_key, password.as_deref()),
        }
    }

    fn gpg(
        dir: tempfile::TempDir,
        armored: &[u8],
        passphrase: Option<&str>,
    ) -> Result<Signer, GitError> {
        let home = dir.path().join("gnupg");
        std::fs::create_dir(&home).map_err(|e| GitError::io("create", &home, e))?;
        set_mode(&home, 0o700)?;
        let home_s = path_str(&home)?;
        let secrets: Vec<String> = passphrase.map(|p| vec![p.to_string()]).unwrap_or_default();
        let pass_file = write_private(
            dir.path(),
            "passphrase",
            passphrase.unwrap_or("").as_bytes(),
            0o600,
        )?;
        let pass_s = path_str(&pass_file)?;
        let fail = |what: &str, out: &cmd::Output| GitError::Signing {
            format: "gpg",
            message: format!("{what}: {}", redact(out.stderr.trim(), &secrets)),
        };
        let imp = cmd::program("gpg", None)
            .env("GNUPGHOME", home_s.clone())
            .args([
                "--batch",
                "--no-tty",
                "--pinentry-mode",
                "loopback",
                "--passphrase-file",
            ])
            .arg(pass_s.clone())
            .arg("--import")
            .stdin(armored.to_vec())
            .timeout(std::time::Duration::from_secs(60))
            .output()?;
        if !imp.ok() {
            return Err(fail("importing the key failed", &imp));
        }
        let list = cmd::program("gpg", None)
            .env("GNUPGHOME", home_s.clone())
            .args(["--batch", "--with-colons", "--list-secret-keys"])
            .timeout(std::time::Duration::from_secs(60))
            .output()?;
        if !list.ok() {
            return Err(fail("listing the imported key failed", &list));
        }
        // The first fingerprint after the first `sec` record is the primary key's.
        let text = list.stdout_str();
        let mut seen_sec = false;
        let mut fpr = None;
        for line in text.lines() {
            if line.starts_with("sec:") {
                seen_sec = true;
            } else if seen_sec && line.starts_with("fpr:") {
                fpr = line.split(':').nth(9).map(str::to_string);
                break;
            }
        }
        let Some(fpr) = fpr.filter(|f| !f.is_empty()) else {
            return Err(GitError::Signing {
                format: "gpg",
                message: "the armored data holds no secret key".into(),
            });
        };
        // git runs gpg.program with its own arguments; the wrapper adds the private home and
        // the loopback passphrase file (gpg-agent allows loopback by default since 2.1.12).
        let script = format!(
            "#!/bin/sh\nexec gpg --homedir {} --batch --no-tty --pinentry-mode loopback --passphrase-file {} \"$@\"\n",
            shell_quote(&home_s),
            shell_quote(&pass_s)
        );
        let wrapper = write_private(dir.path(), "gpg.sh", script.as_bytes(), 0o700)?;
        Ok(Signer {
            config: vec![
                ("gpg.format".into(), "openpgp".into()),
                ("gpg.program".into(), path_str(&wrapper)?),
                ("user.signingKey".into(), fpr),
            ],
            env: vec![("GNUPGHOME".into(), home_s)],
            secrets,
            gnupghome: Some(home),
            _dir: dir,
        })
    }

    fn ssh(dir: tempfile::TempDir, key: &[u8], password: Option<&str>) -> Result<Signer, GitError> {
        let mut key = key.to_vec();
        if !key.ends_with(b"\n") {
            key.push(b'\n');
        }
        let kf = write_private(dir.path(), "signing_key", &key, 0o600)?;
        let mut env = Vec::new();
        let mut secrets = Vec::new();
        if let Some(p) = password {
            // ssh-keygen asks for the password through SSH_ASKPASS (forced), reading a 0600 file.
            secrets.push(p.to_string());
            let pf = write_private(dir.path(), "password", p.as_bytes(), 0o600)?;
            let script = format!("#!/bin/sh\ncat {}\n", shell_quote(&path_str(&pf)?));
            let sp = write_private(dir.path(), "askpass.sh", script.as_bytes(), 0o700)?;
            env.push(("SSH_ASKPASS".into(), path_str(&sp)?));
            env.push(("SSH_ASKPASS_REQUIRE".into(), "force".into()));
            env.push(("DISPLAY".into(), ":0".into()));
        }
        Ok(Signer {
            config: vec![
                ("gpg.format".into(), "ssh".into()),
                ("user.signingKey".into(), path_str(&kf)?),
            ],
            env,
            secrets,
            gnupghome: None,
            _dir: dir,
        })
    }
}

fn set_mode(p: &Path, mode: u32) -> Result<(), GitError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .map_err(|e| GitError::io("chmod", p, e))
}
