//! ferry-api: typed Flux objects and loading them from a directory tree of YAML.
//!
//! Owns: the `image.toolkit.fluxcd.io/v1` kinds (ImageRepository, ImagePolicy,
//! ImageUpdateAutomation), `source.toolkit.fluxcd.io/v1` GitRepository, core `v1` Namespace and
//! Ferry's `ferry.dev/v1alpha1` Pipeline; Go duration syntax; label selectors; Flux-style
//! `${var}` post-build substitution; load/validation errors that name file, line and object.
//!
//! Must not: do any I/O beyond reading the tree (and vars files) it is given, talk to registries
//! or Git, or decide policy outcomes. Semantic checks that Flux reports on the object at
//! reconcile time (e.g. two policy choices set, an invalid selector) are left to the engine.
//!
//! ```
//! use ferry_api::{load_str, Vars};
//! let mut vars = Vars::new();
//! vars.insert("image_registry", "ghcr.io/acme").unwrap();
//! let yaml = "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\n\
//!             metadata: {name: backend, namespace: flux-system}\n\
//!             spec: {image: '${image_registry}/backend', interval: 1m0s}\n";
//! let set = load_str("repo.yaml", yaml, &vars).unwrap();
//! let repo = set.image_repository("flux-system", "backend").unwrap();
//! assert_eq!(repo.spec.image, "ghcr.io/acme/backend");
//! assert_eq!(repo.spec.interval.to_string(), "1m0s");
//! ```

mod duration;
mod error;
mod git;
mod image;
mod index;
mod load;
mod meta;
mod object;
mod pipeline;
mod rendered;
mod selector;
mod set;
mod vars;

pub use duration::{
    DurationError, GoDuration, format_go_duration, parse_flux_duration, parse_go_duration,
};
pub use error::{LoadError, LoadErrorKind, LoadErrors};
pub use git::{
    GitProvider, GitRepository, GitRepositoryRef, GitRepositorySpec, SOURCE_API_VERSION,
};
pub use image::{
    AccessFrom, AlphabeticalPolicy, CommitSpec, CommitUser, CrossNamespaceSourceReference,
    DEFAULT_EXCLUSION_LIST, DigestReflectionPolicy, GitCheckoutSpec, GitSpec, IMAGE_API_VERSION,
    ImagePolicy, ImagePolicyChoice, ImagePolicySpec, ImageProvider, ImageRepository,
    ImageRepositorySpec, ImageUpdateAutomation, ImageUpdateAutomationSpec, NamespaceSelector,
    NumericalPolicy, PushSpec, SemVerPolicy, SigningKey, SigningKeyType, SortOrder, TagFilter,
    UpdateStrategy, UpdateStrategyName,
};
pub use load::{Loaded, REMOVED_TEMPLATE_FIELD, load_dir, load_dir_report, load_str};
pub use meta::{
    DEFAULT_NAMESPACE, LocalObjectReference, NamespacedObjectReference, ObjectMeta, ObjectRef,
    Source,
};
pub use object::{Object, Spec};
pub use pipeline::{FERRY_API_VERSION, Gates, Namespace, Pipeline, PipelineSpec, Stage};
pub use rendered::{RenderedDoc, RenderedLoader, locate_document};
pub use selector::{LabelSelector, LabelSelectorRequirement, SelectorError, SelectorOperator};
pub use set::ObjectSet;
pub use vars::{VarError, Vars, is_valid_var_name, substitute_text};
