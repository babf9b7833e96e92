//! Real git servers (file, http-backend, sshd, git daemon) for tests.
