//! Real `docker-registry` instances (no auth, Basic+TLS, token) for tests.
