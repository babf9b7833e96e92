#!/usr/bin/env bash
# A real OCI registry (docker-registry, distribution 2.8) on 127.0.0.1 that sends push
# notifications to a webhook (for `ferry serve`). No auth, plain HTTP.
#
#   bash testbed/registry-notify.sh start --name NAME --notify URL [--secret-file FILE]
#   bash testbed/registry-notify.sh stop --name NAME
#
# With --secret-file, every notification carries `Authorization: Bearer <secret>`. Writes
# $TESTBED_DIR/NAME.env with the same TESTBED_REGISTRY_* variables as registry.sh. A separate
# script (not a registry.sh option) because the endpoint URL is fixed at start-up and each
# daemon under test needs its own registry.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

usage() { sed -n '5,6p' "$0" | sed 's/^# *//' >&2; exit 2; }

cmd=${1:-}
[ $# -gt 0 ] && shift
name="" notify="" secret_file=""
while [ $# -gt 0 ]; do
  case $1 in
    --name) name=${2:-}; shift ;;
    --notify) notify=${2:-}; shift ;;
    --secret-file) secret_file=${2:-}; shift ;;
    -h | --help) usage ;;
    *) tb_die "unknown option '$1'" ;;
  esac
  shift
done
case $name in '' | */* | *[[:space:]]* | .*) tb_die "--name is required (no slashes or spaces)" ;; esac

state=$TESTBED_DIR/$name
envfile=$TESTBED_DIR/$name.env

answers() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1/v2/") || true
  [ "$code" = 200 ]
}

stop() {
  if [ -f "$envfile" ]; then
    tb_stop "$(tb_env_get "$envfile" TESTBED_REGISTRY_PID)" docker-registry
  fi
  rm -rf "$envfile" "$state"
}

start() {
  tb_need docker-registry curl openssl python3 setsid
  case $notify in http://127.0.0.1:* | http://localhost:* | http://\[::1\]:*) ;;
    *) tb_die "--notify must be an http URL on 127.0.0.1, localhost or [::1]" ;; esac
  stop
  mkdir -p "$state/data"
  chmod 700 "$state"
  local secret=""
  if [ -n "$secret_file" ]; then
    secret=$(tr -d '\n\r' <"$secret_file")
    [ -n "$secret" ] || tb_die "$secret_file is empty"
  fi
  local port pid="" attempt t0
  t0=$(tb_ms)
  for attempt in 1 2 3; do
    port=$(tb_free_port)
    (
      umask 077
      {
        echo "version: 0.1"
        echo "log: {level: warn, accesslog: {disabled: true}}"
        echo "storage:"
        echo "  filesystem: {rootdirectory: $state/data}"
        echo "  delete: {enabled: true}"
        echo "  maintenance: {uploadpurging: {enabled: false}}"
        echo "http:"
        echo "  addr: $TB_HOST:$port"
        echo "  secret: $(openssl rand -hex 16)"
        echo "notifications:"
        echo "  events: {includereferences: true}"
        echo "  endpoints:"
        echo "    - name: ferry"
        echo "      url: $notify"
        if [ -n "$secret" ]; then
          echo "      headers: {Authorization: [\"Bearer $secret\"]}"
        fi
        echo "      timeout: 2s"
        echo "      threshold: 3"
        echo "      backoff: 200ms"
        echo "      ignore: {actions: [pull]}"
      } >"$state/config.yml"
    )
    pid=$(tb_spawn "$state/registry.log" env -i PATH="$PATH" HOME="${HOME:-/root}" \
      docker-registry serve "$state/config.yml")
    tb_wait "$pid" "$state/registry.log" answers "http://$TB_HOST:$port" && break
    tb_stop "$pid" docker-registry
    pid=""
    [ "$attempt" = 3 ] && tb_die "docker-registry did not start"
  done
  tb_env_write "$envfile" \
    TESTBED_REGISTRY_NAME="$name" \
    TESTBED_REGISTRY_MODE="notify" \
    TESTBED_REGISTRY_AUTH="none" \
    TESTBED_REGISTRY_TLS="0" \
    TESTBED_REGISTRY_URL="http://$TB_HOST:$port" \
    TESTBED_REGISTRY_HOST="$TB_HOST:$port" \
    TESTBED_REGISTRY_PORT="$port" \
    TESTBED_REGISTRY_PID="$pid" \
    TESTBED_REGISTRY_DATA="$state/data" \
    TESTBED_REGISTRY_LOG="$state/registry.log" \
    TESTBED_REGISTRY_NOTIFY_URL="$notify"
  tb_say "$name up at http://$TB_HOST:$port, notifying $notify, in $(($(tb_ms) - t0)) ms; env: $envfile"
  grep '^export' "$envfile"
}

mkdir -p "$TESTBED_DIR"
case $cmd in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
