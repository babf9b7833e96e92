#!/usr/bin/env bash
# Benchmark: same-repository, single-manifest promotion (staging -> production) on a real TLS
# registry and a real git repository, against `skopeo copy` of the same tag in the same run.
#
#   bash scripts/bench-promote.sh            # N=5 rounds, debug build in $CARGO_TARGET_DIR
#   N=10 PROFILE=release bash scripts/bench-promote.sh
#
# Prints per round: registry requests sent by ferry (its RegistryClient counters: ping, token,
# retries included), ferry's registry-phase wall time, the whole `ferry promote` wall time
# (Git read + release commit + push included), and `skopeo copy` wall time; then the medians and
# the ratios ferry/skopeo. Goals: requests <= 6, registry phase <= 1.0x skopeo copy.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
N=${N:-5}
PROFILE=${PROFILE:-debug}
export TESTBED_DIR="${TESTBED_DIR:-/tmp/ferry-testbed}"
target=${CARGO_TARGET_DIR:-$root/target}
if [ "$PROFILE" = release ]; then cargo build --quiet --release --bin ferry; else cargo build --quiet --bin ferry; fi
ferry="$target/$PROFILE/ferry"
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench-promote.XXXXXX")
trap 'rm -rf "$work"' EXIT

mkdir -p "$TESTBED_DIR"
flock "$TESTBED_DIR/ferry-none-tls.lock" bash testbed/registry.sh start --auth none --tls --name ferry-none-tls >/dev/null
# shellcheck disable=SC1091
. "$TESTBED_DIR/ferry-none-tls.env"
app_repo="bench/p$$-$RANDOM"
registry="$TESTBED_REGISTRY_HOST/$app_repo"
read -r -a skopeo_copy <<<"$TESTBED_REGISTRY_SKOPEO_COPY_FLAGS"

bare="$work/gitops.git"
git init -q --bare "$bare"
url="file://$bare"
"$ferry" init "$work/gitops" --app backend --registry "$registry" --git-url "$url" >/dev/null
repo_yaml="$work/gitops/flux/bootstrap/infrastructure/image-automation/backend-image-repo.yaml"
printf '  certSecretRef:\n    name: registry-ca\n' >>"$repo_yaml"
mkdir -p "$work/secrets/flux-system/registry-ca"
cp "$TESTBED_REGISTRY_CA" "$work/secrets/flux-system/registry-ca/ca.crt"
(
  cd "$work/gitops"
  git init -q -b main
  git -c user.name=bench -c user.email=bench@localhost add -A
  git -c user.name=bench -c user.email=bench@localhost commit -qm scaffold
  git push -q "$url" main
)
common=(--repo "$url" --path flux --var "image_registry=$registry" --state "$work/state.db"
        --cache-dir "$work/cache" --secrets-dir "$work/secrets")

now_ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }

printf '%-5s %-9s %-14s %-14s %-12s\n' round requests registry_ms promote_ms skopeo_ms
: >"$work/req" ; : >"$work/reg" ; : >"$work/all" ; : >"$work/sko"
for i in $(seq 1 "$N"); do
  sha=$(printf '%07x' $((0xabc0000 + i)))
  ts=$((1738860000 + i))
  python3 testbed/ocipush.py image "$TESTBED_REGISTRY_URL" "$app_repo/backend" "build$i" \
    --content "bench build $i" --cacert "$TESTBED_REGISTRY_CA" >/dev/null
  "$ferry" publish "$registry/backend:build$i" --env staging --version "0.0.$i" --sha "$sha" \
    --timestamp "$ts" "${common[@]}" >/dev/null
  "$ferry" reconcile "${common[@]}" >/dev/null 2>&1 || true
  stag="staging-v0.0.$i-$sha-$ts"
  t0=$(now_ms)
  out=$("$ferry" promote backend --to production --tag "$stag" --by bench --yes --no-reconcile "${common[@]}")
  t1=$(now_ms)
  skopeo copy "${skopeo_copy[@]}" --all --preserve-digests -q \
    "docker://$registry/backend:$stag" "docker://$registry/backend:skopeo-copy-$i"
  t2=$(now_ms)
  req=$(sed -n 's/^registry: \([0-9]*\) requests in \([0-9]*\) ms$/\1/p' <<<"$out")
  reg=$(sed -n 's/^registry: \([0-9]*\) requests in \([0-9]*\) ms$/\2/p' <<<"$out")
  printf '%-5s %-9s %-14s %-14s %-12s\n' "$i" "$req" "$reg" "$((t1 - t0))" "$((t2 - t1))"
  echo "$req" >>"$work/req"; echo "$reg" >>"$work/reg"; echo $((t1 - t0)) >>"$work/all"; echo $((t2 - t1)) >>"$work/sko"
done
req=$(median <"$work/req"); reg=$(median <"$work/reg"); all=$(median <"$work/all"); sko=$(median <"$work/sko")
echo
echo "median registry requests per promotion: $req (goal <= 6)"
echo "median ferry registry phase: ${reg} ms; whole ferry promote: ${all} ms; skopeo copy: ${sko} ms"
awk -v r="$reg" -v a="$all" -v s="$sko" 'BEGIN {
  printf "ratio registry phase / skopeo copy: %.2fx (goal <= 1.0x)\n", r / s;
  printf "ratio whole promote (Git read, release commit, push) / skopeo copy: %.2fx\n", a / s }'
echo "profile: $PROFILE"
