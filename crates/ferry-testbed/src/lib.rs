//! ferry-testbed
