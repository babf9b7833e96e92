//! The Flux object loader: arbitrary YAML as a file of the GitOps repository, as a rendered
//! (kustomize build) document, with `${var}` substitution, and Flux duration strings.
//! Invariants: loading is deterministic; every error names the file (and is not empty);
//! a failed load returns at least one error.
#![no_main]

use ferry_api::{RenderedDoc, RenderedLoader, Vars, load_str, parse_flux_duration, substitute_text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut vars = Vars::new();
    let _ = vars.insert("app", "backend");
    let _ = vars.insert("env", "staging");
    let first = load_str("fuzz.yaml", text, &vars);
    assert_eq!(first, load_str("fuzz.yaml", text, &vars), "non-deterministic load");
    if let Err(errors) = &first {
        assert!(!errors.0.is_empty(), "an error result without errors");
        for e in &errors.0 {
            assert!(e.to_string().starts_with("fuzz.yaml"), "{e}");
        }
    }
    let mut rendered = RenderedLoader::new();
    rendered.add(
        RenderedDoc { file: "apps/fuzz.yaml", line: 3, text, origin: "flux-system/apps" },
        Some(&vars),
    );
    let loaded = rendered.finish();
    for e in &loaded.errors {
        assert!(e.to_string().starts_with("apps/fuzz.yaml"), "{e}");
    }
    if let Ok(out) = substitute_text(text, &vars) {
        // Substitution never invents `${`: every one left was in the input.
        assert!(out.matches("${").count() <= text.matches("${").count());
    }
    if text.len() < 64 {
        let _ = parse_flux_duration(text);
    }
});
