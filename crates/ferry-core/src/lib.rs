//! ferry-core: the vocabulary every Ferry crate shares, defined once. An image reference
//! ([`ImageRef`], and [`split_reference`], the one splitter of `name[:tag][@digest]` strings)
//! and an object's identity ([`ObjectKey`], [`Kind`]).
//!
//! Must not: depend on another Ferry crate, talk to a network, or validate registry names
//! (that is `ferry-registry`'s `ImageName`, which follows Flux's rules for `spec.image`).

mod image;
mod object;

pub use image::{ImageRef, Reference, ReferenceError, split_reference};
pub use object::{Kind, ObjectKey};
