//! ferry-setters
