//! Unified diffs of setter edits (for dry runs and commit previews).

use similar::TextDiff;

/// A `git diff`-style unified diff (3 lines of context) between `old` and `new` for `path`;
/// empty when they are equal. Invalid UTF-8 is shown lossily.
pub fn unified_diff(path: &str, old: &[u8], new: &[u8]) -> String {
    if old == new {
        return String::new();
    }
    let old = String::from_utf8_lossy(old);
    let new = String::from_utf8_lossy(new);
    TextDiff::from_lines(old.as_ref(), new.as_ref())
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{path}"), &format!("b/{path}"))
        .to_string()
}
