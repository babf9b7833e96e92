//! ferry-git
