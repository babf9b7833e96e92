//! Captures build metadata for `ferry version`: the git revision, the build date and the rustc
//! version. The date is `SOURCE_DATE_EPOCH` when set, else the commit time (never "now"), so two
//! builds of one commit embed the same bytes.

use std::process::Command;

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a Unix time (proleptic Gregorian, UTC).
fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn main() {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-env-changed=FERRY_GIT_REVISION");
    for p in ["HEAD", "packed-refs"] {
        if let Some(path) = output("git", &["rev-parse", "--git-path", p]) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    if let Some(head_ref) = output("git", &["symbolic-ref", "-q", "HEAD"])
        && let Some(path) = output("git", &["rev-parse", "--git-path", &head_ref])
    {
        println!("cargo:rerun-if-changed={path}");
    }

    let revision = std::env::var("FERRY_GIT_REVISION")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| output("git", &["rev-parse", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_string());
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .or_else(|| output("git", &["log", "-1", "--format=%ct"]).and_then(|s| s.parse().ok()));
    let date = epoch.map(rfc3339).unwrap_or_else(|| "unknown".to_string());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let rustc_version = output(&rustc, &["-V"]).unwrap_or_else(|| "unknown".to_string());

    println!("cargo:rustc-env=FERRY_GIT_REVISION={revision}");
    println!("cargo:rustc-env=FERRY_BUILD_DATE={date}");
    println!("cargo:rustc-env=FERRY_RUSTC_VERSION={rustc_version}");
}
