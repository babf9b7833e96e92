#!/usr/bin/env bash
# Load on `ferry serve`'s /hooks/registry (issue 12): RATE requests/s for SECONDS from a loopback
# open-loop generator (crates/ferry-testbed/examples/hook_load.rs), mixing valid signed events,
# events naming unknown repositories, bad signatures, oversized bodies and malformed JSON, while
# real pushes go to a real registry that notifies the daemon. Checks:
#   - every real push ends in exactly one commit (none lost, none doubled);
#   - every load request got its class's status code (202, 401, 413, 400);
#   - the daemon's RSS stays bounded (sampled every 0.5 s, and VmHWM).
# Prints p50/p99 latency per class and peak RSS. A bench, not a test: run it by hand.
#
#   nice -n 10 bash scripts/bench-hooks.sh                  # 1000/s for 60 s, a push every 2 s
#   RATE=200 SECONDS_=10 PUSH_EVERY=1 bash scripts/bench-hooks.sh
#   FERRY_BIN=... LOAD_BIN=... bash scripts/bench-hooks.sh   # prebuilt binaries, no cargo
#
# Uses release builds (CARGO_TARGET_DIR respected). Cleans up after itself.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
RATE=${RATE:-1000}
SECONDS_=${SECONDS_:-60}
PUSH_EVERY=${PUSH_EVERY:-2}
export TESTBED_DIR="${TESTBED_DIR:-/tmp/ferry-bench-hooks}"
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench-hooks.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  bash testbed/registry-notify.sh stop --name bench-hooks >/dev/null 2>&1 || true
  bash testbed/gitserver.sh stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
say() { printf '\n== %s\n' "$*" >&2; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

say "build (release)"
target="${CARGO_TARGET_DIR:-$root/target}/release"
ferry=${FERRY_BIN:-$target/ferry}
load=${LOAD_BIN:-$target/examples/hook_load}
[ -n "${FERRY_BIN:-}" ] || cargo build --release --quiet --bin ferry
[ -n "${LOAD_BIN:-}" ] || cargo build --release --quiet -p ferry-testbed --example hook_load

bash testbed/gitserver.sh start http >/dev/null
# shellcheck disable=SC1091
. "$TESTBED_DIR/git.env"
openssl rand -hex 16 >"$work/secret"
port=$(free_port)
bash testbed/registry-notify.sh start --name bench-hooks \
  --notify "http://127.0.0.1:$port/hooks/registry" --secret-file "$work/secret" >/dev/null
# shellcheck disable=SC1091
. "$TESTBED_DIR/bench-hooks.env"
host=$TESTBED_REGISTRY_HOST
repo="bench-hooks-$$"
bash testbed/gitserver.sh repo "$repo" >/dev/null
bare=$TESTBED_GIT_ROOT/$repo.git

tree=$work/tree
mkdir -p "$tree/flux" "$tree/apps"
cat >"$tree/flux/objects.yaml" <<EOF
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: app, namespace: flux-system}
spec: {image: $host/bench/app, interval: 10m}
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
spec: {url: $TESTBED_GIT_HTTP_URL/$repo.git, interval: 10m, ref: {branch: main}}
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
cat >"$tree/apps/deployment.yaml" <<EOF
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
(cd "$tree" && git init -q -b main && git -c user.name=b -c user.email=b@l add -A &&
  git -c user.name=b -c user.email=b@l commit -qm init && git push -q "$TESTBED_GIT_HTTP_URL/$repo.git" main)
python3 testbed/ocipush.py image "$TESTBED_REGISTRY_URL" bench/app develop-v0.0.1-0000001-1 --content seed >/dev/null

"$ferry" serve --repo "file://$bare" --path flux --state "$work/serve.db" --cache-dir "$work/cache" \
  --listen "127.0.0.1:$port" --webhook-secret-file "$work/secret" >/dev/null 2>"$work/serve.log" &
serve_pid=$!
pids+=("$serve_pid")
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
for _ in $(seq 300); do git --git-dir "$bare" show main:apps/deployment.yaml | grep -q develop-v0.0.1 && break; sleep 0.05; done
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$serve_pid/status"; }
rss0=$(rss_kb)

say "load: $RATE/s for ${SECONDS_}s, a real push every ${PUSH_EVERY}s"
(while kill -0 "$serve_pid" 2>/dev/null; do rss_kb >>"$work/rss"; sleep 0.5; done) &
pids+=($!)
"$load" "http://127.0.0.1:$port/hooks/registry" "$work/secret" "$host/bench/app" "$RATE" "$SECONDS_" \
  >"$work/load.out" 2>&1 &
load_pid=$!
pids+=("$load_pid")
: >"$work/pushed"
i=0
t_end=$(($(date +%s) + SECONDS_))
while [ "$(date +%s)" -lt "$t_end" ]; do
  i=$((i + 1))
  tag=$(printf 'develop-v2.%d.0-%07x-%d' "$i" "$i" "$((1738900000 + i))")
  python3 testbed/ocipush.py image "$TESTBED_REGISTRY_URL" bench/app "$tag" --content "hooks $i" >/dev/null
  echo "$tag" >>"$work/pushed"
  sleep "$PUSH_EVERY"
done
load_rc=0
wait "$load_pid" || load_rc=$?
# The last push must land: wait for its commit (bounded), then count.
last=$(tail -1 "$work/pushed")
for _ in $(seq 600); do git --git-dir "$bare" show main:apps/deployment.yaml | grep -q "$last" && break; sleep 0.05; done
rss1=$(rss_kb)
hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$serve_pid/status")
peak=$(sort -n "$work/rss" | tail -1)

say "results"
cat "$work/load.out"
trailers=$(git --git-dir "$bare" log --format='%(trailers:key=Ferry-Change,valueonly)' main)
lost=0 doubled=0 pushes=0
while read -r tag; do
  pushes=$((pushes + 1))
  n=$(grep -c "new=$host/bench/app:$tag\$" <<<"$trailers" || true)
  if [ "$n" -eq 0 ]; then lost=$((lost + 1)); echo "lost: $tag"; fi
  if [ "$n" -gt 1 ]; then doubled=$((doubled + 1)); echo "doubled: $tag ($n commits)"; fi
done <"$work/pushed"
commits=$(git --git-dir "$bare" rev-list --count main)
echo "pushes=$pushes commits=$((commits - 2)) (besides the initial commit and the seed tag's) lost=$lost doubled=$doubled"
echo "rss: start=$((rss0 / 1024))MiB end=$((rss1 / 1024))MiB peak_sampled=$((peak / 1024))MiB VmHWM=$((hwm / 1024))MiB"
echo "load generator exit: $load_rc (1 = some request got another status than its class's)"
[ "$lost" -eq 0 ] && [ "$doubled" -eq 0 ] && [ "$load_rc" -eq 0 ]
