# shellcheck shell=bash
# Shared by scripts/compare-flux.sh and scripts/bench-controller-scale.sh (sourced, never run):
# the test bed (control plane, registry, git http), Flux's controllers and `ferry controller` as
# processes on 127.0.0.1, and the /proc readings both scripts print (RSS, CPU ticks).
# It starts only what the calling script asks for and stops all of it on exit.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export TESTBED_DIR=${TESTBED_DIR:-/tmp/ferry-cluster-bench}
CB_CACHE=${FERRY_TESTBED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry-testbed}
CB_IMAGE_BIN=$CB_CACHE/flux-controllers-irc-v1.2.3-iac-v1.2.4
CB_SOURCE_BIN=$CB_CACHE/flux-source-sc-v1.9.5-kc-v1.9.5
CB_PIDS=()
CB_CLUSTERS=()

cb_say() { printf '== %s\n' "$*" >&2; }
cb_die() { echo "error: $*" >&2; exit 1; }
cb_ms() { date +%s%3N; }
cb_free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

cb_cleanup() {
  local p c
  for p in "${CB_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${CB_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  for c in "${CB_CLUSTERS[@]}"; do bash "$root/testbed/cluster.sh" stop --name "$c" >/dev/null 2>&1 || true; done
  bash "$root/testbed/registry.sh" stop --name cb-registry >/dev/null 2>&1 || true
  bash "$root/testbed/gitserver.sh" stop >/dev/null 2>&1 || true
}

# cb_setup: release ferry, Flux's image controllers, a plain-HTTP registry and the git http server
# (Basic auth). Sets FERRY, REG_URL, REG_HOST and the TESTBED_GIT_* variables.
cb_setup() {
  [ -x "$CB_IMAGE_BIN/image-reflector-controller" ] && [ -x "$CB_IMAGE_BIN/image-automation-controller" ] ||
    cb_die "Flux's image controllers are not built; run: bash testbed/cluster.sh build flux-controllers"
  bash "$root/testbed/cluster.sh" build all >&2
  cb_say "build ferry (release)"
  (cd "$root" && cargo build --release --quiet --bin ferry)
  FERRY=${CARGO_TARGET_DIR:-$root/target}/release/ferry
  bash "$root/testbed/registry.sh" start --name cb-registry >/dev/null
  # shellcheck disable=SC1091
  . "$TESTBED_DIR/cb-registry.env"
  REG_URL=$TESTBED_REGISTRY_URL REG_HOST=$TESTBED_REGISTRY_HOST
  bash "$root/testbed/gitserver.sh" start http --auth basic >/dev/null
  # shellcheck disable=SC1091
  . "$TESTBED_DIR/git.env"
}

# cb_push REPO TAG...: one small image per tag; the content names repo (without org) and tag, so
# the same tag has the same digest in every org.
cb_push() {
  local repo=$1 tag
  shift
  for tag in "$@"; do
    python3 "$root/testbed/ocipush.py" image "$REG_URL" "$repo" "$tag" --content "${repo#*/} $tag" >/dev/null
  done
}

# cb_cluster NAME: a fresh private control plane; sets KUBECONFIG_FILE, KUBECTL, CLUSTER_ENV.
cb_cluster() {
  bash "$root/testbed/cluster.sh" stop --name "$1" >/dev/null 2>&1 || true
  bash "$root/testbed/cluster.sh" start --name "$1" >/dev/null
  CB_CLUSTERS+=("$1")
  CLUSTER_ENV=$TESTBED_DIR/$1.env
  KUBECONFIG_FILE=$(sed -n "s/^export TESTBED_KUBECONFIG='\(.*\)'$/\1/p" "$CLUSTER_ENV")
  KUBECTL=$(sed -n "s/^export TESTBED_KUBECTL='\(.*\)'$/\1/p" "$CLUSTER_ENV")
  FLUX_CRDS=$(sed -n "s/^export TESTBED_FLUX_CRDS='\(.*\)'$/\1/p" "$CLUSTER_ENV")
  k apply --server-side -f "$FLUX_CRDS" >/dev/null
  k wait --for condition=established --timeout=60s -f "$FLUX_CRDS" >/dev/null
}

cb_cluster_stop() { bash "$root/testbed/cluster.sh" stop --name "$1" >/dev/null 2>&1 || true; }

k() { "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

# cb_apply: `kubectl apply --server-side` of stdin.
cb_apply() { k apply --server-side --force-conflicts -f - >/dev/null; }

cb_namespace() { printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n' "$1" | cb_apply; }

# cb_git_secret NS: the Secret git-credentials (Basic auth for the git http server).
cb_git_secret() {
  cb_namespace "$1"
  k -n "$1" create secret generic git-credentials --from-literal=username="$TESTBED_GIT_HTTP_USER" \
    --from-literal=password="$TESTBED_GIT_HTTP_PASSWORD" --dry-run=client -o yaml | cb_apply
}

# cb_start_flux DIR: Flux's image-reflector-controller and image-automation-controller, every
# address on 127.0.0.1; sets FLUX_PIDS (called directly, never in $(...), so the pids stay known).
cb_start_flux() {
  local d=$1 irc iac
  mkdir -p "$d/irc-data"
  KUBECONFIG=$KUBECONFIG_FILE RUNTIME_NAMESPACE=flux-system setsid "$CB_IMAGE_BIN/image-reflector-controller" \
    --metrics-addr "127.0.0.1:$(cb_free_port)" --health-addr "127.0.0.1:$(cb_free_port)" \
    --storage-path "$d/irc-data" --log-level info >"$d/irc.log" 2>&1 </dev/null &
  irc=$!
  KUBECONFIG=$KUBECONFIG_FILE RUNTIME_NAMESPACE=flux-system setsid "$CB_IMAGE_BIN/image-automation-controller" \
    --metrics-addr "127.0.0.1:$(cb_free_port)" --health-addr "127.0.0.1:$(cb_free_port)" \
    --log-level info >"$d/iac.log" 2>&1 </dev/null &
  iac=$!
  CB_PIDS+=("$irc" "$iac")
  FLUX_PIDS=("$irc" "$iac")
}

# cb_start_ferry DIR [FLAGS...]: `ferry controller` with --listen; sets FERRY_PID and FERRY_LISTEN.
cb_start_ferry() {
  local d=$1
  shift
  mkdir -p "$d/ferry-cache"
  FERRY_LISTEN=127.0.0.1:$(cb_free_port)
  FERRY_LOG=${FERRY_LOG:-info} setsid "$FERRY" --state "$d/ferry-state.db" controller --kubeconfig "$KUBECONFIG_FILE" \
    --cache-dir "$d/ferry-cache" --listen "$FERRY_LISTEN" --drift-grace 0 "$@" \
    >"$d/ferry.log" 2>&1 </dev/null &
  FERRY_PID=$!
  CB_PIDS+=("$FERRY_PID")
}

cb_stop_pids() {
  local p
  for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "$@"; do wait "$p" 2>/dev/null || true; done
}

# cb_rss_kb PID...: the sum of VmRSS (kB).
cb_rss_kb() {
  local p sum=0 v
  for p in "$@"; do
    v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}

# cb_ticks PID...: the sum of utime + stime (clock ticks).
cb_ticks() {
  local p sum=0 v
  for p in "$@"; do
    v=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 }' || echo 0)
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}

# cb_sample_rss OUT PID...: in the background, appends "ms kB" once a second until killed; sets
# SAMPLER_PID.
cb_sample_rss() {
  local out=$1
  shift
  (while true; do
    echo "$(cb_ms) $(cb_rss_kb "$@")" >>"$out"
    sleep 1
  done) >/dev/null 2>&1 </dev/null &
  SAMPLER_PID=$!
  CB_PIDS+=("$SAMPLER_PID")
}

# cb_mib KB: kB as MiB with one decimal.
cb_mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# cb_idle_cpu SECONDS PID...: CPU seconds used over the window, and the percentage of one core.
cb_idle_cpu() {
  local secs=$1 t0 t1 hz
  shift
  hz=$(getconf CLK_TCK)
  t0=$(cb_ticks "$@")
  sleep "$secs" # a measurement window, not a synchronisation
  t1=$(cb_ticks "$@")
  awk -v d=$((t1 - t0)) -v hz="$hz" -v s="$secs" 'BEGIN { printf "%.2f s (%.2f %%)", d / hz, 100 * d / hz / s }'
}

# cb_alive PID...: every process still runs.
cb_alive() {
  local p
  for p in "$@"; do kill -0 "$p" 2>/dev/null || return 1; done
}

# cb_not_ready: prints "KIND NS/NAME" of objects not yet Ready=True at their generation.
cb_not_ready() {
  local kind
  for kind in imagerepositories imagepolicies imageupdateautomations; do
    k get "$kind" -A -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name} {.metadata.generation}={.status.observedGeneration} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
      awk -v kind="$kind" '{ split($2, g, "="); if (g[1] != g[2] || $3 != "True") print kind, $1 }'
  done
}
