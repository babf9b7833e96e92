#!/usr/bin/env bash
# Scale bench (issue 12): APPS ImageRepositories with TAGS tags each on the real registry, and a
# GitOps repo with APPS apps x 3 environments (a marked Deployment and an ImagePolicy per app and
# environment, one ImageUpdateAutomation per environment writing apps/<env>; every object in
# flux-system, so no accessFrom is needed).
# Measures one full `ferry reconcile --once` pass (first pass: every file changes; second pass:
# nothing to do), its peak RSS, and the steady RSS of `ferry serve` after its start-up pass.
# Goal: a full pass under 60 s and RSS under 100 MB. A bench, not a test.
#
#   nice -n 10 bash scripts/bench-scale.sh              # APPS=1000 TAGS=100
#   APPS=100 TAGS=20 bash scripts/bench-scale.sh
#   FERRY_BIN=target/release/ferry bash scripts/bench-scale.sh   # skip the build
#
# Tags: one image is pushed over HTTP; its repository gets TAGS tags as link files written
# straight into docker-registry's filesystem storage (_manifests/tags/<tag>/{current,index}),
# what pushing that manifest under each tag leaves there; that repository directory is then
# copied for every other one. The registry serves them as usual (a tag list reads the directory).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
APPS=${APPS:-1000}
TAGS=${TAGS:-100}
IDLE_SECONDS=${IDLE_SECONDS:-20}
export TESTBED_DIR="${TESTBED_DIR:-/tmp/ferry-bench-scale}"
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench-scale.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  bash testbed/registry.sh stop --name bench-scale >/dev/null 2>&1 || true
  bash testbed/gitserver.sh stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
say() { printf '\n== %s\n' "$*" >&2; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
command -v /usr/bin/time >/dev/null || bash testbed/install.sh >/dev/null
command -v /usr/bin/time >/dev/null || { apt-get install -y -qq time >/dev/null; }

say "build (release)"
ferry=${FERRY_BIN:-}
if [ -z "$ferry" ]; then
  cargo build --release --quiet --bin ferry
  ferry="${CARGO_TARGET_DIR:-$root/target}/release/ferry"
fi

say "registry: $APPS repositories x $TAGS tags"
bash testbed/registry.sh start --name bench-scale >/dev/null
# shellcheck disable=SC1091
. "$TESTBED_DIR/bench-scale.env"
host=$TESTBED_REGISTRY_HOST
t0=$(date +%s%3N)
python3 testbed/ocipush.py image "$TESTBED_REGISTRY_URL" scale/app0 seed --content scale >/dev/null
repos=$TESTBED_DIR/bench-scale/data/docker/registry/v2/repositories/scale
# The tags of app0 (each tag -> that one manifest), then app0 copied for every other repository.
python3 - "$repos/app0" "$TAGS" <<'EOF'
import os, sys
repo, tags = sys.argv[1], int(sys.argv[2])
digest = open(os.path.join(repo, "_manifests/tags/seed/current/link")).read().strip()
hexd = digest.split(":", 1)[1]
envs = ["develop", "staging", "production"]
for t in range(tags):
    env, n = envs[t % 3], t // 3
    d = os.path.join(repo, "_manifests/tags", f"{env}-v0.{n}.0-{n:07x}-{1738800000 + n}")
    os.makedirs(os.path.join(d, "current"), exist_ok=True)
    os.makedirs(os.path.join(d, "index/sha256", hexd), exist_ok=True)
    for p in ("current/link", f"index/sha256/{hexd}/link"):
        with open(os.path.join(d, p), "w") as f:
            f.write(digest)
EOF
rm -rf "$repos/app0/_manifests/tags/seed"
for a in $(seq 1 $((APPS - 1))); do cp -a "$repos/app0" "$repos/app$a"; done
t1=$(date +%s%3N)
echo "registry laid out in $(((t1 - t0) / 1000))s (1 push + link files)"
curl -sf "$TESTBED_REGISTRY_URL/v2/scale/app$((APPS - 1))/tags/list" | python3 -c 'import json,sys; print("tags in the last repository:", len(json.load(sys.stdin)["tags"]))'

say "GitOps repo: $APPS apps x 3 environments"
bash testbed/gitserver.sh start http >/dev/null
# shellcheck disable=SC1091
. "$TESTBED_DIR/git.env"
repo="bench-scale-$$"
bash testbed/gitserver.sh repo "$repo" >/dev/null
bare=$TESTBED_GIT_ROOT/$repo.git
tree=$work/tree
python3 - "$tree" "$APPS" "$host" "file://$bare" <<'EOF'
import os, sys
tree, apps, host, url = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
envs = ["develop", "staging", "production"]
os.makedirs(f"{tree}/flux", exist_ok=True)
with open(f"{tree}/flux/sync.yaml", "w") as f:
    f.write(f"apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {{name: gitops, namespace: flux-system}}\nspec: {{url: {url}, interval: 10m, ref: {{branch: main}}}}\n")
    for env in envs:
        f.write(f"""---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata: {{name: {env}, namespace: flux-system}}
spec:
  interval: 10m
  sourceRef: {{kind: GitRepository, name: gitops}}
  git:
    checkout: {{ref: {{branch: main}}}}
    commit: {{author: {{name: ferry, email: ferry@localhost}}}}
    push: {{branch: main}}
  update: {{path: ./apps/{env}, strategy: Setters}}
""")
with open(f"{tree}/flux/repos.yaml", "w") as f:
    for a in range(apps):
        f.write(f"{'---' + chr(10) if a else ''}apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\nmetadata: {{name: app{a}, namespace: flux-system}}\nspec: {{image: {host}/scale/app{a}, interval: 10m}}\n")
for env in envs:
    with open(f"{tree}/flux/policies-{env}.yaml", "w") as f:
        for a in range(apps):
            f.write(f"""{'---' + chr(10) if a else ''}apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {{name: app{a}-{env}, namespace: flux-system}}
spec:
  imageRepositoryRef: {{name: app{a}}}
  filterTags: {{pattern: '^{env}-v[0-9]+\\.[0-9]+\\.[0-9]+-[a-f0-9]+-(?P<ts>[0-9]+)$', extract: '$ts'}}
  policy: {{numerical: {{order: asc}}}}
""")
    for a in range(apps):
        d = f"{tree}/apps/{env}/app{a}"
        os.makedirs(d, exist_ok=True)
        with open(f"{d}/deployment.yaml", "w") as f:
            f.write(f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: app{a}, namespace: {env}}}
spec:
  template:
    spec:
      containers:
        - name: app
          image: {host}/scale/app{a}:{env}-v0.0.0-0000000-0 # {{"$imagepolicy": "flux-system:app{a}-{env}"}}
""")
EOF
(cd "$tree" && git init -q -b main && git -c user.name=b -c user.email=b@l add -A &&
  git -c user.name=b -c user.email=b@l commit -qm init && git push -q "file://$bare" main)
echo "files: $(find "$tree" -name '*.yaml' | wc -l)"

common=(--repo "file://$bare" --path flux)
pass() {
  local name=$1
  /usr/bin/time -v -o "$work/$name.time" "$ferry" reconcile --once "${common[@]}" \
    --state "$work/scale.db" --cache-dir "$work/cache" >"$work/$name.out" 2>"$work/$name.err" || true
  local wall rss code
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { print $2 }' "$work/$name.time")
  rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/$name.time")
  code=$(awk -F': ' '/Exit status/ { print $2 }' "$work/$name.time")
  echo "$name: wall=$wall peak_rss=$((rss / 1024))MiB exit=$code pushes=$(grep -c '^pushed ' "$work/$name.out" || true)"
}
say "ferry reconcile --once"
pass first
pass second
tail -3 "$work/first.err" >&2 || true
echo "commits on main: $(git --git-dir "$bare" rev-list --count main)"
git --git-dir "$bare" show main:apps/production/app$((APPS - 1))/deployment.yaml | grep image:

say "ferry serve: steady RSS"
port=$(free_port)
"$ferry" serve "${common[@]}" --state "$work/serve.db" --cache-dir "$work/cache-serve" \
  --listen "127.0.0.1:$port" --allow-unsigned-webhooks >/dev/null 2>"$work/serve.log" &
serve_pid=$!
pids+=("$serve_pid")
for _ in $(seq 1200); do
  n=$(curl -sf "http://127.0.0.1:$port/metrics" | awk '/^ferry_scans_total/ { s += $2 } END { print s + 0 }') || n=0
  [ "${n:-0}" -ge "$APPS" ] && break
  sleep 0.25
done
echo "start-up scans: $n"
sleep "$IDLE_SECONDS"
rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$serve_pid/status")
hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$serve_pid/status")
echo "serve: steady_rss=$((rss / 1024))MiB (after ${IDLE_SECONDS}s idle) peak_rss=$((hwm / 1024))MiB"
