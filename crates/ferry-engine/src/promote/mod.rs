//! Promotion without rebuild: publish, promote by digest, gates, release records, versions.
