//! ferry-policy
