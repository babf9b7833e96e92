#!/usr/bin/env bash
# Benchmark (issue 3 §5): commit + push of one change through Ferry's git layer (clone cache,
# fetch, commit, push: crates/ferry-git/examples/commit_push.rs) against the same with the git
# CLI on a warm clone (fetch, reset, edit, commit, push), same remote, same run.
#
#   bash scripts/bench-gitpush.sh                        # file:// remote, N=7 rounds
#   TRANSPORT=http bash scripts/bench-gitpush.sh         # git http-backend (Basic auth) remote
#
# Goal: ferry/git <= 1.2.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
N=${N:-7}
TRANSPORT=${TRANSPORT:-file}
export TESTBED_DIR="${TESTBED_DIR:-/tmp/ferry-testbed}"
target=${CARGO_TARGET_DIR:-$root/target}
cargo build --quiet --release -p ferry-git --example commit_push
cp_bin="$target/release/examples/commit_push"
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench-gitpush.XXXXXX")
trap 'rm -rf "$work"' EXIT
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
gitc() { git -c user.name=bench -c user.email=bench@localhost "$@"; }

case $TRANSPORT in
  file)
    git init -q --bare "$work/remote.git"
    url="file://$work/remote.git"
    git_url="$url"
    ;;
  http)
    bash testbed/gitserver.sh start http --auth basic >/dev/null
    # shellcheck disable=SC1091
    . "$TESTBED_DIR/git.env"
    name="bench-$$-$RANDOM"
    bash testbed/gitserver.sh repo "$name" >/dev/null
    url="$TESTBED_GIT_HTTP_URL/$name.git"
    git_url="$TESTBED_GIT_HTTP_AUTH_URL/$name.git"
    export FERRY_GIT_USERNAME="$TESTBED_GIT_HTTP_USER"
    printf '%s' "$TESTBED_GIT_HTTP_PASSWORD" >"$work/pw"; export FERRY_GIT_PASSWORD_FILE="$work/pw"
    ;;
  *) echo "TRANSPORT must be file or http" >&2; exit 2 ;;
esac

# A repo of realistic size: the seed layout plus 2,000 small files.
mkdir -p "$work/seed"
(
  cd "$work/seed"
  git init -q -b main
  mkdir -p apps
  for i in $(seq 1 2000); do printf 'kind: ConfigMap\nmetadata:\n  name: c%s\n' "$i" >"apps/c$i.yaml"; done
  echo "image: reg/app:v0" >image.yaml
  gitc add -A && gitc commit -qm seed && git push -q "$git_url" main
)
git clone -q "$git_url" "$work/cli"

now_ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }
# Warm-up: both sides have a warm clone before timing (Ferry's cache persists between runs).
"$cp_bin" "$url" main "$work/cache" image.yaml "image: reg/app:warm" >/dev/null 2>&1
: >"$work/f.ms"; : >"$work/g.ms"
printf '%-6s %-10s %-10s\n' round ferry_ms git_ms
for i in $(seq 1 "$N"); do
  t0=$(now_ms)
  "$cp_bin" "$url" main "$work/cache" image.yaml "image: reg/app:f$i" >/dev/null 2>&1
  t1=$(now_ms)
  (
    cd "$work/cli"
    git fetch -q origin main && git reset -q --hard origin/main
    echo "image: reg/app:g$i" >image.yaml
    gitc commit -qam "Set image.yaml" && git push -q origin HEAD:main
  )
  t2=$(now_ms)
  echo $((t1 - t0)) >>"$work/f.ms"; echo $((t2 - t1)) >>"$work/g.ms"
  printf '%-6s %-10s %-10s\n' "$i" $((t1 - t0)) $((t2 - t1))
done
fm=$(median <"$work/f.ms"); gm=$(median <"$work/g.ms")
[ "$(git --git-dir "$work/cli/.git" log --oneline origin/main | wc -l)" -ge $((2 * N)) ]
echo
echo "== results ($TRANSPORT remote, $N rounds, medians)"
echo "ferry-git commit+push: ${fm} ms (clone cache: lock, fetch, reset, edit, commit, push)"
echo "git CLI commit+push:   ${gm} ms (warm clone: fetch, reset, edit, commit, push)"
awk -v f="$fm" -v g="$gm" 'BEGIN {printf "ratio ferry/git: %.2f (goal <= 1.2)\n", f / g}'
