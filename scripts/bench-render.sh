#!/usr/bin/env bash
# Benchmark (issue 15): rendering a Flux repo of $KS Flux Kustomizations (default 100), each
# building one app folder with a shared Component (ImageRepository + ImagePolicy named ${APP})
# and a setter-marked Deployment; and its share of one `ferry scan` pass over the same tree
# against a real docker-registry (every ImageRepository scans one repository of 10 tags).
#
#   bash scripts/bench-render.sh                 # N=5 rounds, release build in $CARGO_TARGET_DIR
#   N=9 KS=200 PROFILE=debug bash scripts/bench-render.sh
#
# Prints the median wall time of `ferry render`, of `ferry scan`, the render share of the scan,
# and the time of one bare `kubectl kustomize`/`kustomize build` (the floor per Kustomization).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
N=${N:-5}
KS=${KS:-100}
PROFILE=${PROFILE:-release}
export TESTBED_DIR="${TESTBED_DIR:-/tmp/ferry-testbed}"
target=${CARGO_TARGET_DIR:-$root/target}
if [ "$PROFILE" = release ]; then
  cargo build --quiet --release --bin ferry
else
  cargo build --quiet --bin ferry
fi
ferry="$target/$PROFILE/ferry"
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench-render.XXXXXX")
trap 'rm -rf "$work"' EXIT

now_ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }

mkdir -p "$TESTBED_DIR"
flock -o "$TESTBED_DIR/ferry-none-http.start-lock" \
  bash testbed/registry.sh start --auth none --name ferry-none-http >/dev/null
# shellcheck disable=SC1091
. "$TESTBED_DIR/ferry-none-http.env"
repo=bench/render-app
have=$(python3 testbed/ocipush.py list "$TESTBED_REGISTRY_URL" "$repo" 2>/dev/null | wc -l || true)
if [ "$have" -lt 10 ]; then
  python3 testbed/ocipush.py image "$TESTBED_REGISTRY_URL" "$repo" 1.0.0 >/dev/null
  python3 testbed/ocipush.py tags "$TESTBED_REGISTRY_URL" "$repo" 1.0.0 9 --prefix "1.0.1" >/dev/null
fi

# The repo: clusters/prod/apps.yaml holds $KS Flux Kustomizations.
t="$work/tree"
mkdir -p "$t/clusters/prod" "$t/components/image"
cat >"$t/components/image/kustomization.yaml" <<'YAML'
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
resources: [repository.yaml, policy.yaml]
YAML
cat >"$t/components/image/repository.yaml" <<YAML
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: "\${APP}"}
spec: {image: "$TESTBED_REGISTRY_HOST/$repo", interval: 1m0s, insecure: true}
YAML
cat >"$t/components/image/policy.yaml" <<'YAML'
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: "${APP}"}
spec:
  imageRepositoryRef: {name: "${APP}"}
  policy: {semver: {range: ">=1.0.0"}}
YAML
: >"$t/clusters/prod/apps.yaml"
for i in $(seq 1 "$KS"); do
  app="app$i"
  mkdir -p "$t/apps/$app"
  printf 'resources: [deployment.yaml]\n' >"$t/apps/$app/kustomization.yaml"
  cat >"$t/apps/$app/deployment.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: $app}
spec:
  template:
    spec:
      containers:
      - name: app
        image: $TESTBED_REGISTRY_HOST/$repo:1.0.0 # {"\$imagepolicy": "$app:$app"}
YAML
  cat >>"$t/clusters/prod/apps.yaml" <<YAML
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: $app, namespace: flux-system}
spec:
  interval: 10m
  path: ./apps/$app
  prune: true
  targetNamespace: $app
  components: [../../components/image]
  sourceRef: {kind: GitRepository, name: flux-system}
  postBuild:
    substitute: {APP: $app}
YAML
done

objects=$("$ferry" render --dir "$t" -o json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
echo "tree: $KS Flux Kustomizations, $objects image objects rendered"

render=(); warm=(); scan=(); scanwarm=(); bare=()
kz=(kubectl kustomize); command -v kustomize >/dev/null 2>&1 && kz=(kustomize build)
# The render cache lives beside the clone cache (--cache-dir D/git -> D/render): a fresh D is a
# cold render, the same D a warm one (unchanged tree).
"$ferry" render --dir "$t" --cache-dir "$work/warm/git" >/dev/null
for i in $(seq 1 "$N"); do
  s=$(now_ms); "$ferry" render --dir "$t" --cache-dir "$work/cold$i/git" >/dev/null; render+=($(( $(now_ms) - s )))
  s=$(now_ms); "$ferry" render --dir "$t" --cache-dir "$work/warm/git" >/dev/null; warm+=($(( $(now_ms) - s )))
  rm -f "$work/state.db"
  s=$(now_ms); "$ferry" scan --dir "$t" --state "$work/state.db" --cache-dir "$work/scold$i/git" >/dev/null
  scan+=($(( $(now_ms) - s )))
  s=$(now_ms); "$ferry" scan --dir "$t" --state "$work/state.db" --cache-dir "$work/warm/git" >/dev/null
  scanwarm+=($(( $(now_ms) - s )))
  s=$(now_ms); "${kz[@]}" "$t/apps/app1" >/dev/null; bare+=($(( $(now_ms) - s )))
done
r=$(printf '%s\n' "${render[@]}" | median)
w=$(printf '%s\n' "${warm[@]}" | median)
sc=$(printf '%s\n' "${scan[@]}" | median)
sw=$(printf '%s\n' "${scanwarm[@]}" | median)
b=$(printf '%s\n' "${bare[@]}" | median)
echo "ferry render, cold ($KS Kustomizations, $(nproc) cores): ${r} ms (median of $N; $(( r / KS )) ms per Kustomization)"
echo "ferry render, warm (unchanged tree, cached builds): ${w} ms"
echo "one bare ${kz[*]}: ${b} ms"
echo "ferry scan, cold render ($objects objects scanned, policies): ${sc} ms; render share $(( 100 * r / sc ))%"
echo "ferry scan, warm render: ${sw} ms; render share $(( 100 * w / sw ))%"
