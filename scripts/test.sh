#!/usr/bin/env bash
# The test command: every unit, conformance and integration test, against real servers started on
# 127.0.0.1 by the tests themselves (through testbed/*.sh). Needs the packages of testbed/install.sh.
set -euo pipefail
# rustup installs cargo under ~/.cargo/bin; a non-login shell may not have it on PATH.
command -v cargo >/dev/null 2>&1 || export PATH="$HOME/.cargo/bin:$PATH"
cd "$(dirname "$0")/.."
bash testbed/install.sh
# Go builds the test peers (kube-apiserver, etcd, kube-controller-manager, kubectl, flux) from pinned
# modules, once per version, into ~/.cache/ferry-testbed; with a warm cache this is a no-op.
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
if ! bash testbed/cluster.sh build; then
  if [ "${CI:-}" = true ]; then
    echo "test.sh: the Kubernetes test bed could not be built (see above)" >&2
    exit 1
  fi
  echo "test.sh: warning: no Kubernetes test bed; the cluster tests will print SKIP" >&2
fi
export FERRY_CONFORMANCE_DIR="${FERRY_CONFORMANCE_DIR:-$(cd .. && pwd)/shared/conformance}"
if [ ! -d "$FERRY_CONFORMANCE_DIR" ]; then
  echo "test.sh: Flux conformance corpus not found at $FERRY_CONFORMANCE_DIR" >&2
  echo "test.sh: set FERRY_CONFORMANCE_DIR to the shared/conformance folder" >&2
  [ "${CI:-}" = true ] && exit 1
fi
export TESTBED_DIR="${TESTBED_DIR:-/tmp/ferry-testbed}"
# Stops every server the tests started under $TESTBED_DIR. A server that will not stop fails the
# command loudly: the test command leaves nothing running.
cleanup() {
  local rc=$? ok=1
  bash testbed/registry.sh stop-all >/dev/null || ok=0
  bash testbed/gitserver.sh stop >/dev/null || ok=0
  bash testbed/cluster.sh stop --name ferry-cluster >/dev/null || ok=0
  if [ "$ok" = 0 ]; then
    echo "test.sh: CLEANUP FAILED: test servers under $TESTBED_DIR may still be running" >&2
    echo "test.sh: check with: pgrep -a registry; pgrep -af token_issuer" >&2
    [ "$rc" = 0 ] && rc=1
  fi
  exit "$rc"
}
trap cleanup EXIT
# Two test threads: the machine has two cores and the servers are shared between tests.
cargo test --workspace --locked -- --test-threads="${FERRY_TEST_THREADS:-2}"
