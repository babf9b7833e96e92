//! Unit tests for the template engine.
