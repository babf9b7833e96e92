#!/usr/bin/env bash
# Benchmarks of `ferry serve` on this machine, against a real registry and git server on
# 127.0.0.1:
#   1. push-to-commit latency (p50, p99) with registry notifications (webhook) and with polling
#      only (the ImageRepository interval; Flux's only mode);
#   2. idle CPU and RSS of the daemon with 100 ImageRepositories and 300 ImagePolicies.
#
#   bash scripts/bench-daemon.sh                 # N=100 webhook pushes, N_POLL=20 polled pushes
#   N=20 N_POLL=10 POLL_INTERVAL=2s bash scripts/bench-daemon.sh
#
# Uses a release build (CARGO_TARGET_DIR respected). Cleans up after itself.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
N=${N:-100}
N_POLL=${N_POLL:-20}
POLL_INTERVAL=${POLL_INTERVAL:-2s}
IDLE_SECONDS=${IDLE_SECONDS:-30}
export TESTBED_DIR="${TESTBED_DIR:-/tmp/ferry-bench-daemon}"
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench-daemon.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  bash testbed/registry-notify.sh stop --name bench-hook >/dev/null 2>&1 || true
  bash testbed/registry-notify.sh stop --name bench-poll >/dev/null 2>&1 || true
  bash testbed/registry-notify.sh stop --name bench-idle >/dev/null 2>&1 || true
  bash testbed/gitserver.sh stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
say() { printf '\n== %s\n' "$*" >&2; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ms() { date +%s%3N; }

say "build (release)"
cargo build --release --quiet --bin ferry
ferry="${CARGO_TARGET_DIR:-$root/target}/release/ferry"
bash testbed/gitserver.sh start http >/dev/null
# shellcheck disable=SC1091
. "$TESTBED_DIR/git.env"
openssl rand -hex 16 >"$work/secret"

# objects DIR REGISTRY_HOST GIT_URL INTERVAL: one app, develop only (ImageRepository, policy,
# automation, GitRepository, a marked Deployment).
objects() {
  local d=$1 host=$2 url=$3 interval=$4
  mkdir -p "$d/flux"
  cat >"$d/flux/objects.yaml" <<EOF
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: app, namespace: flux-system}
spec: {image: $host/bench/app, interval: $interval}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: app, namespace: flux-system}
spec:
  imageRepositoryRef: {name: app}
  filterTags: {pattern: '^develop-v[0-9]+\.[0-9]+\.[0-9]+-[a-f0-9]+-(?P<ts>[0-9]+)$', extract: '\$ts'}
  policy: {numerical: {order: asc}}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: gitops, namespace: flux-system}
spec: {url: $url, interval: 10m, ref: {branch: main}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata: {name: app, namespace: flux-system}
spec:
  interval: 10m
  sourceRef: {kind: GitRepository, name: gitops}
  git:
    checkout: {ref: {branch: main}}
    commit: {author: {name: ferry, email: ferry@localhost}}
    push: {branch: main}
  update: {path: ./apps, strategy: Setters}
EOF
  mkdir -p "$d/apps"
  cat >"$d/apps/deployment.yaml" <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: develop}
spec:
  template:
    spec:
      containers:
        - name: app
          image: $host/bench/app:develop-v0.0.0-0000000-0 # {"\$imagepolicy": "flux-system:app"}
EOF
}

# latency MODE N INTERVAL: writes one line "MODE n=N p50=..ms p99=..ms max=..ms" to
# $work/MODE.result. Runs in this shell (not in $(...)), so the daemon's pid is kept for cleanup.
latency() {
  local mode=$1 n=$2 interval=$3 port repo reg_env url bare tag t0 i lat
  port=$(free_port)
  local notify_port=$port secret_file=$work/secret
  if [ "$mode" = polling ]; then
    # Notifications go to a port nobody serves: the daemon only polls.
    notify_port=$(free_port)
  fi
  bash testbed/registry-notify.sh start --name "bench-$([ "$mode" = polling ] && echo poll || echo hook)" \
    --notify "http://127.0.0.1:$notify_port/hooks/registry" --secret-file "$secret_file" >/dev/null
  reg_env=$TESTBED_DIR/bench-$([ "$mode" = polling ] && echo poll || echo hook).env
  # shellcheck disable=SC1090
  . "$reg_env"
  url=$TESTBED_REGISTRY_URL
  repo="bench-$mode-$$"
  bash testbed/gitserver.sh repo "$repo" >/dev/null
  bare=$TESTBED_GIT_ROOT/$repo.git
  local tree=$work/tree-$mode
  objects "$tree" "$TESTBED_REGISTRY_HOST" "$TESTBED_GIT_HTTP_URL/$repo.git" "$interval"
  (cd "$tree" && git init -q -b main && git -c user.name=b -c user.email=b@l add -A &&
    git -c user.name=b -c user.email=b@l commit -qm init && git push -q "$TESTBED_GIT_HTTP_URL/$repo.git" main)
  python3 testbed/ocipush.py image "$url" bench/app develop-v0.0.1-0000001-1 --content seed >/dev/null
  "$ferry" serve --repo "file://$bare" --path flux --state "$work/$mode.db" --cache-dir "$work/cache-$mode" \
    --listen "127.0.0.1:$port" --webhook-secret-file "$secret_file" >/dev/null 2>"$work/$mode.log" &
  pids+=($!)
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
  # Wait for the start-up pass to commit the seed tag.
  for _ in $(seq 300); do git --git-dir "$bare" show main:apps/deployment.yaml | grep -q develop-v0.0.1 && break; sleep 0.05; done
  : >"$work/$mode.lat"
  for i in $(seq 1 "$n"); do
    tag=$(printf 'develop-v1.%d.0-%07x-%d' "$i" "$i" "$((1738860000 + i))")
    python3 testbed/ocipush.py image "$url" bench/app "$tag" --content "bench $i" >/dev/null
    t0=$(ms)
    lat=""
    for _ in $(seq 6000); do
      if git --git-dir "$bare" show main:apps/deployment.yaml 2>/dev/null | grep -q "$tag"; then
        lat=$(($(ms) - t0))
        break
      fi
      sleep 0.005
    done
    [ -n "$lat" ] || { echo "bench: $tag never committed" >&2; tail -20 "$work/$mode.log" >&2; exit 1; }
    echo "$lat" >>"$work/$mode.lat"
  done
  sort -n "$work/$mode.lat" | awk -v mode="$mode" -v n="$n" '
    { v[NR] = $1 }
    END {
      p50 = v[int((NR - 1) * 0.50) + 1]; p99 = v[int((NR - 1) * 0.99) + 1];
      printf "%s n=%d p50=%dms p99=%dms max=%dms\n", mode, n, p50, p99, v[NR]
    }' >"$work/$mode.result"
}

say "push-to-commit latency: webhook (N=$N)"
latency webhook "$N" 10m
hook=$(cat "$work/webhook.result")
echo "$hook"
say "push-to-commit latency: polling only, ImageRepository interval $POLL_INTERVAL (N=$N_POLL)"
latency polling "$N_POLL" "$POLL_INTERVAL"
poll=$(cat "$work/polling.result")
echo "$poll"

say "idle CPU and RSS with 100 ImageRepositories and 300 ImagePolicies"
port=$(free_port)
bash testbed/registry-notify.sh start --name bench-idle \
  --notify "http://127.0.0.1:$port/hooks/registry" --secret-file "$work/secret" >/dev/null
# shellcheck disable=SC1091
. "$TESTBED_DIR/bench-idle.env"
big=$work/big
mkdir -p "$big"
for i in $(seq 1 100); do
  python3 testbed/ocipush.py image "$TESTBED_REGISTRY_URL" "bench/app$i" "develop-v0.0.1-0000001-1" --content "app$i" >/dev/null
  {
    printf 'apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata: {name: app%d, namespace: flux-system}\nspec: {image: %s/bench/app%d, interval: 1m}\n' "$i" "$TESTBED_REGISTRY_HOST" "$i"
    for env in develop staging production; do
      printf -- '---\napiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata: {name: app%d, namespace: %s}\n' "$i" "$env"
      printf "spec:\n  imageRepositoryRef: {name: app%d, namespace: flux-system}\n  filterTags: {pattern: '^%s-v[0-9]+\\\\.[0-9]+\\\\.[0-9]+-[a-f0-9]+-(?P<ts>[0-9]+)\$', extract: '\$ts'}\n  policy: {numerical: {order: asc}}\n" "$i" "$env"
    done
  } >"$big/app$i.yaml"
done
"$ferry" serve --dir "$big" --state "$work/idle.db" --cache-dir "$work/cache-idle" \
  --listen "127.0.0.1:$port" --webhook-secret-file "$work/secret" >/dev/null 2>"$work/idle.log" &
idle_pid=$!
pids+=("$idle_pid")
for _ in $(seq 600); do
  n=$(curl -sf "http://127.0.0.1:$port/metrics" | awk '/^ferry_scans_total/ { s += $2 } END { print s + 0 }')
  [ "${n:-0}" -ge 100 ] && break
  sleep 0.1
done
[ "${n:-0}" -ge 100 ] || { echo "bench: start-up scans did not finish" >&2; tail -20 "$work/idle.log" >&2; exit 1; }
objs=$(curl -sf "http://127.0.0.1:$port/metrics" | grep '^ferry_objects{' | tr '\n' ' ')
sleep 1 # let the start-up pass finish writing before the idle window opens (not a sync point)
ticks=$(getconf CLK_TCK)
cpu() { awk '{ print $14 + $15 }' "/proc/$idle_pid/stat"; }
c0=$(cpu)
t0=$(ms)
sleep "$IDLE_SECONDS"
c1=$(cpu)
t1=$(ms)
rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$idle_pid/status")
hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$idle_pid/status")
idle_cpu=$(awk -v c="$((c1 - c0))" -v hz="$ticks" -v ms="$((t1 - t0))" 'BEGIN { printf "%.2f", 100 * c / hz / (ms / 1000) }')
echo "objects: $objs"
echo "idle: cpu=${idle_cpu}% over ${IDLE_SECONDS}s rss=$((rss / 1024))MiB peak_rss=$((hwm / 1024))MiB"

say "summary"
echo "$hook"
echo "$poll"
hook_p50=$(sed -n 's/.*p50=\([0-9]*\)ms.*/\1/p' <<<"$hook")
poll_p50=$(sed -n 's/.*p50=\([0-9]*\)ms.*/\1/p' <<<"$poll")
awk -v h="$hook_p50" -v p="$poll_p50" -v i="$POLL_INTERVAL" 'BEGIN { if (h > 0) printf "polling (interval %s) p50 / webhook p50 = %.1fx\n", i, p / h }'
echo "idle: cpu=${idle_cpu}% rss=$((rss / 1024))MiB peak_rss=$((hwm / 1024))MiB (100 ImageRepositories, 300 ImagePolicies)"
