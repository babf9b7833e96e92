//! ferry-template
