//! Pure Flux image-policy logic for Ferry (`image.toolkit.fluxcd.io/v1` semantics).
//!
//! Owns: Go float parsing ([`numeric`]), Masterminds v3 semver ([`semver`]), the SemVer /
//! Alphabetical / Numerical policers ([`policer`]), `filterTags` ([`filter`]), the
//! ImageRepository scan bookkeeping ([`scan`]), the cross-namespace ACL ([`acl`]), digest
//! reflection and status refs ([`reflect`]) and the ImageUpdateAutomation decisions that need
//! no I/O ([`automation`]).
//!
//! Must not: do any I/O (no network, files, clocks, randomness) or depend on the other Ferry
//! crates. Callers pass data in (tags in store order, `now`, lookup results) and get decisions
//! and Flux-worded errors back.
//!
//! One deliberate difference from Flux: with `filterTags`, Flux hands the policer its
//! candidates in Go map (random) order; Ferry uses store order (descending bytes of the
//! original tag), so ties are broken the same way on every run (see [`TagFilter::apply`]).
//!
//! ```
//! use ferry_policy::{Policer, PolicyChoice, TagFilter, select_latest};
//! let store = ["staging-v1.0.0-abc-20", "staging-v1.0.0-abc-100", "main-9"];
//! let filter = TagFilter::new(Some(r"^staging-.*-(?P<ts>[0-9]+)$"), Some("$ts")).unwrap();
//! let policer = Policer::new(&PolicyChoice::Numerical { order: "asc".into() }).unwrap();
//! assert_eq!(select_latest(&store, &filter, &policer).unwrap(), "staging-v1.0.0-abc-100");
//! ```

#![deny(missing_docs)]

pub mod acl;
pub mod automation;
pub mod error;
pub mod filter;
pub mod numeric;
pub mod policer;
pub mod reflect;
pub mod scan;
pub mod semver;

pub use acl::{AccessFrom, AclError, check_access};
pub use error::PolicyError;
pub use filter::{Candidate, TagFilter, select_latest};
pub use numeric::{ParseFloatError, parse_go_float};
pub use policer::{Order, Policer, PolicyChoice};
pub use reflect::{
    DigestAction, DigestReflection, ImageRef, RefUpdate, digest_action, ready_message, update_refs,
};
pub use semver::{Constraints, Version};
