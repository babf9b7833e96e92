//! Loading the output of a render: the documents one Flux Kustomization produces (kustomize
//! build), substituted with that Kustomization's own variables.
//!
//! The render itself (running kustomize, choosing the variables) belongs to `ferry-render`;
//! this module only parses and validates the documents it is given, per object.

use crate::error::LoadError;
use crate::load::{Loaded, Loader};
use crate::vars::Vars;

/// Accumulates objects from rendered documents; problems are per object (a bad object is
/// missing, every other one loads).
pub struct RenderedLoader {
    loader: Loader,
}

/// One rendered document and where it came from.
#[derive(Debug, Clone, Copy)]
pub struct RenderedDoc<'a> {
    /// Source file (relative to the source root) the document was read from by kustomize.
    pub file: &'a str,
    /// Line of the document in that file (1 when unknown).
    pub line: usize,
    /// The document as kustomize printed it.
    pub text: &'a str,
    /// The Flux Kustomization that produced it, `namespace/name`.
    pub origin: &'a str,
}

impl Default for RenderedLoader {
    fn default() -> Self {
        Self::new()
    }
}

impl RenderedLoader {
    /// An empty loader.
    pub fn new() -> Self {
        RenderedLoader {
            loader: Loader::new(None),
        }
    }

    /// Loads one document. `vars` is the producing Kustomization's variables (`None`: it has no
    /// `postBuild`, so `${...}` is left as written, as in Flux).
    pub fn add(&mut self, doc: RenderedDoc<'_>, vars: Option<&Vars>) {
        self.loader.vars = vars.cloned();
        self.loader.rendered = Some((doc.line, doc.origin.to_string()));
        let before = self.loader.errors.len();
        self.loader.load_text(doc.file, doc.text, false);
        for e in &mut self.loader.errors[before..] {
            // Lines inside kustomize's output mean nothing to the user: point at the source.
            e.line = doc.line;
        }
        self.loader.rendered = None;
    }

    /// Records a problem found outside the documents (e.g. a Kustomization that failed).
    pub fn error(&mut self, e: LoadError) {
        self.loader.errors.push(e);
    }

    /// Every object, problem and warning.
    pub fn finish(self) -> Loaded {
        self.loader.into_loaded()
    }
}

/// Line of the document in `content` that defines `kind` named `name` (or, failing that, the
/// first document of that kind); `None` when there is none.
pub fn locate_document(content: &str, kind: &str, name: &str) -> Option<usize> {
    crate::load::locate(content, kind, name)
}
