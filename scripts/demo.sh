#!/usr/bin/env bash
# Ferry's main job, end to end, on this machine: a real registry and a real git server on
# 127.0.0.1, a GitOps repo laid out like the seed, images published for develop and staging, and
# `ferry reconcile` writing the newest immutable tags back to Git through setter markers; then
# `ferry serve` reacting to the registry's push notifications (with its dashboard and
# notifications to a local receiver), promotion, a rollback that sticks, status, history and
# delivery metrics.
#
#   bash scripts/demo.sh            # run it; everything is cleaned up at the end
#   KEEP=1 bash scripts/demo.sh     # keep servers and files to look around (prints how to stop)
set -euo pipefail
# rustup installs cargo under ~/.cargo/bin; a non-login shell may not have it on PATH.
command -v cargo >/dev/null 2>&1 || export PATH="$HOME/.cargo/bin:$PATH"
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export TESTBED_DIR="${TESTBED_DIR:-/tmp/ferry-demo}"
work=$(mktemp -d /tmp/ferry-demo-work.XXXXXX)
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
serve_pid=""
receiver_pid=""
cleanup() {
  local rc=$? ok=1
  if [ "${KEEP:-0}" = 1 ] && [ -n "$serve_pid" ]; then
    echo "kept running: dashboard http://127.0.0.1:$serve_port/ui (token: $(cut -d: -f2 "$work/ui-tokens")), ferry serve pid $serve_pid, receiver pid $receiver_pid"
    echo "stop them with: kill $serve_pid $receiver_pid"
  elif [ -n "$serve_pid" ] && kill -0 "$serve_pid" 2>/dev/null; then
    kill -TERM "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
  fi
  if [ "${KEEP:-0}" != 1 ] && [ -n "$receiver_pid" ]; then
    kill "$receiver_pid" 2>/dev/null || true
  fi
  if [ "${KEEP:-0}" = 1 ]; then
    echo "kept: $work (stop servers: TESTBED_DIR=$TESTBED_DIR bash testbed/registry-notify.sh stop --name registry; TESTBED_DIR=$TESTBED_DIR bash testbed/gitserver.sh stop)"
    return
  fi
  bash testbed/registry-notify.sh stop --name registry >/dev/null || ok=0
  bash testbed/gitserver.sh stop >/dev/null || ok=0
  rm -rf "$work"
  if [ "$ok" = 0 ]; then
    echo "demo.sh: CLEANUP FAILED: servers under $TESTBED_DIR may still be running" >&2
    [ "$rc" = 0 ] && exit 1
  fi
}
trap cleanup EXIT

say "install packages (apt, idempotent) and build ferry"
bash testbed/install.sh
cargo build --locked --quiet --bin ferry
ferry="${CARGO_TARGET_DIR:-$root/target}/debug/ferry"

say "start a registry (notifying the daemon of pushes) and a git server on 127.0.0.1"
# The daemon's port is chosen now: the registry's notification endpoint is fixed at start-up.
serve_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
openssl rand -hex 16 >"$work/webhook-secret"
bash testbed/registry-notify.sh start --name registry \
  --notify "http://127.0.0.1:$serve_port/hooks/registry" --secret-file "$work/webhook-secret" >/dev/null
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

say "a local notification receiver (one JSON line per message in $work/notifications.jsonl)"
receiver_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 - "$receiver_port" "$work/notifications.jsonl" <<'PY' &
import http.server, sys
port, out = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(out, "ab") as f:
            f.write(body + b"\n")
        self.send_response(200)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
receiver_pid=$!
printf 'receivers:\n  - name: demo\n    url: http://127.0.0.1:%s/hook\n' "$receiver_port" >"$work/notify.yaml"
echo "demo:$(openssl rand -hex 12)" >"$work/ui-tokens"

say "ferry serve: the daemon, woken by the registry's push notifications, with its dashboard"
FERRY_LOG=${FERRY_LOG:-info} NO_COLOR=1 "$ferry" serve "${common[@]}" \
  --listen "127.0.0.1:$serve_port" --webhook-secret-file "$work/webhook-secret" \
  --notify-config "$work/notify.yaml" --ui --ui-token-file "$work/ui-tokens" 2>"$work/serve.log" &
serve_pid=$!
for _ in $(seq 300); do
  curl -sf "http://127.0.0.1:$serve_port/readyz" >/dev/null && break
  kill -0 "$serve_pid" 2>/dev/null || { cat "$work/serve.log" >&2; echo "demo: ferry serve exited" >&2; exit 1; }
  sleep 0.1
done
curl -sf "http://127.0.0.1:$serve_port/readyz" >/dev/null || { echo "demo: ferry serve not ready" >&2; exit 1; }
echo "ferry serve ready on http://127.0.0.1:$serve_port (log: $work/serve.log)"
echo "dashboard: http://127.0.0.1:$serve_port/ui (log in with the token in $work/ui-tokens)"

# wait_for FILE TEXT: poll the GitOps repo (bounded) until FILE at main contains TEXT.
wait_for() {
  local t0 i
  t0=$(date +%s%3N)
  for i in $(seq 300); do
    git -C "$work/check" pull -q --ff-only >/dev/null 2>&1 || true
    if grep -q "$2" "$work/check/$1" 2>/dev/null; then
      echo "  $1 -> $2: committed $(($(date +%s%3N) - t0)) ms after the push"
      return 0
    fi
    sleep 0.1
  done
  echo "demo: $2 never reached $1; daemon log:" >&2
  tail -n 40 "$work/serve.log" >&2
  exit 1
}
publish backend develop-v0.0.4-d4e5f6a-1738879999
wait_for flux/apps/backend/develop/deployment.yaml develop-v0.0.4-d4e5f6a-1738879999
publish backend staging-v0.0.2-d4e5f6a-1738880000
wait_for flux/apps/backend/staging/deployment.yaml staging-v0.0.2-d4e5f6a-1738880000
git -C "$work/check" log -3 --format='%h %an: %s%n%(trailers:key=Ferry-Change,valueonly)' | sed '/^$/d'
curl -s "http://127.0.0.1:$serve_port/metrics" |
  grep -E '^ferry_(git_pushes_total|webhook_requests_total|policy_changes_total)' || true

# step CMD ARGS...: run a ferry command with the source flags; 0 and 3 (changes pushed) are success.
step() {
  local rc
  set +e
  "$ferry" "$@" "${common[@]}"
  rc=$?
  set -e
  [ "$rc" = 0 ] || [ "$rc" = 3 ] || { echo "demo: ferry $1 failed ($rc)" >&2; exit 1; }
}

say "promote the digest staging tested to production (no rebuild; release record in Git)"
step promote backend --to production --yes
wait_for flux/apps/backend/production/deployment.yaml 'production-v0.0.2-d4e5f6a-'
step promote frontend --to production --yes
step version backend

say "roll staging back: revert, hold staging/backend, deny the bad tag (all in one commit)"
step rollback staging backend --steps 1 --reason "demo: bad build" --by demo
wait_for flux/apps/backend/staging/deployment.yaml staging-v0.0.1-a1b2c3d-1738860123

say "the bad tag is still the newest in the registry; reconcile twice: the rollback sticks"
step reconcile
step reconcile
git -C "$work/check" pull -q --ff-only
grep -q staging-v0.0.1-a1b2c3d-1738860123 "$work/check/flux/apps/backend/staging/deployment.yaml" ||
  { echo "demo: staging moved although it is held" >&2; exit 1; }
echo "staging/backend still runs staging-v0.0.1-a1b2c3d-1738860123"

say "lift the hold; a fixed build arrives and the daemon moves staging to it"
step unhold staging backend --by demo
publish backend staging-v0.0.3-e5f6a7b-1738890000
wait_for flux/apps/backend/staging/deployment.yaml staging-v0.0.3-e5f6a7b-1738890000

say "ferry status"
"$ferry" status "${common[@]}" | tee "$work/status.txt"
grep -q '^frontend .*production-v0.0.1-a1b2c3d-' "$work/status.txt" ||
  { echo "demo: ferry status does not show what frontend runs in production" >&2; exit 1; }
say "ferry history staging backend"
step history staging backend
say "ferry get images all -A"
"$ferry" get images all -A --state "$work/state.db"
say "ferry metrics dora (from Git evidence)"
step metrics dora --since 3650d

say "notifications the local receiver got (one per change)"
# The daemon notices each change after its next pass; wait (bounded) for the last one.
for _ in $(seq 300); do
  grep -q 'staging-v0.0.3-e5f6a7b-1738890000' "$work/notifications.jsonl" 2>/dev/null && break
  sleep 0.1
done
python3 - "$work/notifications.jsonl" <<'PY'
import json, sys
msgs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
keys = [(m["commit"], m["app"], m["env"], m["kind"]) for m in msgs]
for m in msgs:
    print(f'  {m["kind"]:<11} {m["app"]:<8} {m["env"]:<10} {m["old"]["tag"] or "-"} -> {m["new"]["tag"]}  {m["commit"][:10]}')
assert len(keys) == len(set(keys)), "a change was notified twice"
assert any(m["kind"] == "rollback" for m in msgs), "no rollback notification"
assert sum(m["kind"] == "promotion" for m in msgs) == 2, "not one notification per promotion"
print(f"{len(msgs)} messages, {len(set(keys))} distinct changes")
PY

if [ "${KEEP:-0}" = 1 ]; then
  say "demo finished; the daemon and its dashboard keep running"
  exit 0
fi
say "stop the daemon (SIGTERM: it finishes the reconcile in flight, then exits 0)"
kill -TERM "$serve_pid"
set +e
wait "$serve_pid"
rc=$?
set -e
serve_pid=""
[ "$rc" = 0 ] || { tail -n 40 "$work/serve.log" >&2; echo "demo: ferry serve exited $rc" >&2; exit 1; }
echo "ferry serve stopped cleanly"
say "demo finished"
