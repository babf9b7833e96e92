#!/usr/bin/env bash
# Benchmark (issue 2 §9): `ferry scan` of one repository holding 10,000 tags against
# `skopeo list-tags` of the same repository, in the same run, on a real docker-registry; peak RSS
# of the scan (/usr/bin/time -v); policy evaluation over 100,000 tags (ferry-policy example).
#
#   bash scripts/bench-scan.sh                 # N=5 rounds, release build in $CARGO_TARGET_DIR
#   N=9 TAGS=10000 bash scripts/bench-scan.sh
#
# Goals: scan/skopeo <= 1.0, peak RSS < 30 MB, policy evaluation < 50 ms.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
N=${N:-5}
TAGS=${TAGS:-10000}
export TESTBED_DIR="${TESTBED_DIR:-/tmp/ferry-testbed}"
target=${CARGO_TARGET_DIR:-$root/target}
command -v /usr/bin/time >/dev/null 2>&1 || { apt-get install -y -qq time >/dev/null || sudo apt-get install -y -qq time >/dev/null; }
command -v skopeo >/dev/null 2>&1 || bash testbed/install.sh
cargo build --quiet --release --bin ferry
cargo build --quiet --release -p ferry-policy --example bench_policy
ferry="$target/release/ferry"
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench-scan.XXXXXX")
trap 'rm -rf "$work"' EXIT

now_ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }
summary=()

# VARIANTS: "http" = plain HTTP registry (Ferry, like Flux/go-containerregistry, probes https first
# on a local registry and falls back to http); "tls" = HTTPS with a private CA (no probe).
for variant in ${VARIANTS:-http tls}; do
mkdir -p "$TESTBED_DIR"
if [ "$variant" = tls ]; then name=ferry-none-tls; tlsflag=--tls; else name=ferry-none-http; tlsflag=; fi
flock -o "$TESTBED_DIR/$name.start-lock" bash testbed/registry.sh start --auth none $tlsflag --name "$name" >/dev/null
# shellcheck disable=SC1091
. "$TESTBED_DIR/$name.env"
read -r -a skopeo_flags <<<"$TESTBED_REGISTRY_SKOPEO_FLAGS"
cacert=(); [ "$variant" = tls ] && cacert=(--cacert "$TESTBED_REGISTRY_CA")
repo="bench/scan-$TAGS"
have=$(python3 testbed/ocipush.py list "$TESTBED_REGISTRY_URL" "$repo" "${cacert[@]}" 2>/dev/null | wc -l || true)
if [ "$have" -lt "$TAGS" ]; then
  echo "pushing $TAGS tags to $TESTBED_REGISTRY_HOST/$repo (once; reused by later runs)"
  python3 testbed/ocipush.py image "$TESTBED_REGISTRY_URL" "$repo" seed "${cacert[@]}" >/dev/null
  python3 testbed/ocipush.py tags "$TESTBED_REGISTRY_URL" "$repo" seed "$((TAGS - 1))" --jobs 8 "${cacert[@]}" \
    --prefix "staging-v1.0.0-abcdef0-17388" >/dev/null
fi

rm -rf "$work/tree" "$work/secrets" "$work"/*.db; mkdir -p "$work/tree" "$work/secrets/flux-system/ca"
# A plain-HTTP registry is declared the way Flux users do: `insecure: true`.
extra="  insecure: true"
if [ "$variant" = tls ]; then
  cp "$TESTBED_REGISTRY_CA" "$work/secrets/flux-system/ca/ca.crt"
  extra="  certSecretRef: {name: ca}"
fi
cat >"$work/tree/objs.yaml" <<YAML
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: app, namespace: flux-system}
spec:
  image: $TESTBED_REGISTRY_HOST/$repo
  interval: 1m
$extra
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: app, namespace: flux-system}
spec:
  imageRepositoryRef: {name: app}
  filterTags:
    pattern: '^staging-v[0-9]+\.[0-9]+\.[0-9]+-[a-f0-9]+-(?P<ts>[0-9]+)$'
    extract: '\$ts'
  policy: {numerical: {order: asc}}
YAML

: >"$work/ferry.ms"; : >"$work/skopeo.ms"
echo "== $variant registry $TESTBED_REGISTRY_URL"
printf '%-6s %-10s %-10s\n' round ferry_ms skopeo_ms
for i in $(seq 1 "$N"); do
  t0=$(now_ms)
  "$ferry" scan --dir "$work/tree" --secrets-dir "$work/secrets" --state "$work/state.db" >"$work/scan.out"
  t1=$(now_ms)
  skopeo list-tags "${skopeo_flags[@]}" "docker://$TESTBED_REGISTRY_HOST/$repo" >"$work/skopeo.out"
  t2=$(now_ms)
  echo $((t1 - t0)) >>"$work/ferry.ms"; echo $((t2 - t1)) >>"$work/skopeo.ms"
  printf '%-6s %-10s %-10s\n' "$i" $((t1 - t0)) $((t2 - t1))
done
grep -q "found $TAGS tags" "$work/scan.out" || { echo "scan did not see $TAGS tags:"; cat "$work/scan.out"; exit 1; }
[ "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["Tags"]))' "$work/skopeo.out")" = "$TAGS" ]
fm=$(median <"$work/ferry.ms"); sm=$(median <"$work/skopeo.ms")

/usr/bin/time -v "$ferry" scan --dir "$work/tree" --secrets-dir "$work/secrets" --state "$work/rss.db" >/dev/null 2>"$work/time.txt"
rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
/usr/bin/time -v skopeo list-tags "${skopeo_flags[@]}" "docker://$TESTBED_REGISTRY_HOST/$repo" >/dev/null 2>"$work/time2.txt"
sk_rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time2.txt")

summary+=("$(printf '%-5s ferry scan %s ms, skopeo list-tags %s ms, ratio %s; peak RSS ferry %s MB, skopeo %s MB' \
  "$variant" "$fm" "$sm" "$(awk -v f="$fm" -v s="$sm" 'BEGIN {printf "%.2f", f / s}')" \
  "$(awk -v k="$rss_kb" 'BEGIN {printf "%.1f", k / 1024}')" "$(awk -v k="$sk_rss_kb" 'BEGIN {printf "%.1f", k / 1024}')")")
done

policy=$("$target/release/examples/bench_policy" 2>&1 | tail -n 3)
echo
echo "== results ($TAGS tags, $N rounds, medians; goals: ratio <= 1.0, ferry RSS < 30 MB)"
printf '%s\n' "${summary[@]}"
echo "policy evaluation over 100,000 tags (cargo run -p ferry-policy --release --example bench_policy; goal < 50 ms):"
echo "$policy" | sed 's/^/  /'
