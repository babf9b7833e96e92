#!/usr/bin/env bash
# Ferry's main job, end to end, on this machine: a real registry and a real git server on
# 127.0.0.1, a GitOps repo laid out like the seed, images published for develop and staging, and
# `ferry reconcile` writing the newest immutable tags back to Git through setter markers.
#
#   bash scripts/demo.sh            # run it; everything is cleaned up at the end
#   KEEP=1 bash scripts/demo.sh     # keep servers and files to look around (prints how to stop)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export TESTBED_DIR="${TESTBED_DIR:-/tmp/ferry-demo}"
work=$(mktemp -d /tmp/ferry-demo-work.XXXXXX)
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
cleanup() {
  if [ "${KEEP:-0}" = 1 ]; then
    echo "kept: $work (stop servers: TESTBED_DIR=$TESTBED_DIR bash testbed/registry.sh stop; TESTBED_DIR=$TESTBED_DIR bash testbed/gitserver.sh stop)"
    return
  fi
  bash testbed/registry.sh stop >/dev/null 2>&1 || true
  bash testbed/gitserver.sh stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

say "install packages (apt, idempotent) and build ferry"
bash testbed/install.sh
cargo build --locked --quiet --bin ferry
ferry="$root/target/debug/ferry"

say "start a registry and a git server on 127.0.0.1"
bash testbed/registry.sh start >/dev/null
# shellcheck disable=SC1091
. "$TESTBED_DIR/registry.env"
bash testbed/gitserver.sh start http >/dev/null
# shellcheck disable=SC1091
. "$TESTBED_DIR/git.env"
bash testbed/gitserver.sh repo gitops >/dev/null
registry="$TESTBED_REGISTRY_HOST/org"
git_url="$TESTBED_GIT_HTTP_URL/gitops.git"
echo "registry: $TESTBED_REGISTRY_URL   git: $git_url"

say "scaffold the seed's GitOps layout with ferry init and push it"
"$ferry" init "$work/gitops" --app backend --app frontend --registry "$registry" --git-url "$git_url"
(
  cd "$work/gitops"
  git init -q -b main
  git -c user.name=demo -c user.email=demo@localhost add -A
  git -c user.name=demo -c user.email=demo@localhost commit -q -m "Scaffold GitOps layout"
  git push -q "$git_url" main
)

publish() { # app tag
  python3 testbed/ocipush.py image "$TESTBED_REGISTRY_URL" "org/$1" "$2" --content "$1 $2" >/dev/null
}
say "publish images: develop-*, staging-*, <sha> and .sig tags"
for app in backend frontend; do
  publish "$app" develop-v0.0.1-a1b2c3d-1738860000
  publish "$app" develop-v0.0.2-b2c3d4e-1738863000
  publish "$app" b2c3d4e
  publish "$app" staging-v0.0.1-a1b2c3d-1738860123
  publish "$app" sha256-0000.sig
done

common=(--repo "$git_url" --ref main --path flux --var "image_registry=$registry"
        --state "$work/state.db" --cache-dir "$work/cache")

say "ferry reconcile: scan, pick the newest tag per environment, commit and push"
set +e
"$ferry" reconcile "${common[@]}"
rc=$?
set -e
echo "exit status: $rc (3 = changes pushed; 1 = some object failed: production has no production-* tag until the first promotion)"
[ "$rc" = 3 ] || [ "$rc" = 1 ] || { echo "demo: ferry reconcile failed" >&2; exit 1; }

say "a new develop build arrives; reconcile again"
publish backend develop-v0.0.3-c3d4e5f-1738869999
set +e
"$ferry" reconcile "${common[@]}"
rc=$?
set -e
[ "$rc" = 3 ] || [ "$rc" = 1 ] || { echo "demo: ferry reconcile failed" >&2; exit 1; }

say "git log of the GitOps repo (commits and trailers made by ferry)"
git clone -q "$git_url" "$work/check"
git -C "$work/check" log --format='%h %an: %s%n%(trailers:key=Ferry-Change,valueonly)' | sed '/^$/d'
grep -n 'image:' "$work/check/flux/apps/backend/develop/deployment.yaml"
grep -q 'develop-v0.0.3-c3d4e5f-1738869999' "$work/check/flux/apps/backend/develop/deployment.yaml"

say "ferry get images all -A"
"$ferry" get images all -A --state "$work/state.db"
say "demo finished"
