//! Rollback that sticks: revert, holds and deny-lists in Git, history and status from Git evidence.
