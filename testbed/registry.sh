#!/usr/bin/env bash
# A real OCI registry (Debian docker-registry, CNCF distribution 2.8) on 127.0.0.1.
#
#   bash testbed/registry.sh start [--auth none|basic|token] [--tls] [--name NAME]
#   bash testbed/registry.sh stop [--name NAME]
#   bash testbed/registry.sh status [--name NAME]
#   bash testbed/registry.sh stop-all
#
# Writes $TESTBED_DIR/NAME.env (NAME defaults to "registry"; TESTBED_DIR to /tmp/ferry-testbed)
# with TESTBED_REGISTRY_* variables. Starting again with the same options reuses the server;
# other options restart it. Variables never use the REGISTRY_ prefix: distribution reads
# REGISTRY_* as configuration overrides (the server is also launched with `env -i`).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

usage() { sed -n '4,7p' "$0" | sed 's/^# *//' >&2; exit 2; }

cmd=${1:-}
[ $# -gt 0 ] && shift
auth=none tls=0 name=registry
while [ $# -gt 0 ]; do
  case $1 in
    --auth) auth=${2:-}; shift ;;
    --auth=*) auth=${1#*=} ;;
    --tls) tls=1 ;;
    --name) name=${2:-}; shift ;;
    --name=*) name=${1#*=} ;;
    -h | --help) usage ;;
    *) tb_die "unknown option '$1'" ;;
  esac
  shift
done
case $auth in none | basic | token) ;; *) tb_die "--auth takes none, basic or token" ;; esac
case $name in '' | */* | *[[:space:]]* | .*) tb_die "bad --name '$name'" ;; esac

state=$TESTBED_DIR/$name
envfile=$TESTBED_DIR/$name.env

# /v2/ answers 200 (open) or 401 (auth required): the registry is serving.
answers() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 ${2:+--cacert "$2"} "$1/v2/") || true
  [ "$code" = 200 ] || [ "$code" = 401 ]
}

running() {
  [ -f "$envfile" ] &&
    tb_alive "$(tb_env_get "$envfile" TESTBED_REGISTRY_PID)" &&
    answers "$(tb_env_get "$envfile" TESTBED_REGISTRY_URL)" "$(tb_env_get "$envfile" TESTBED_REGISTRY_CA)"
}

stop() {
  if [ ! -f "$envfile" ]; then
    rm -rf "$state"
    return 0
  fi
  local pid tpid
  pid=$(tb_env_get "$envfile" TESTBED_REGISTRY_PID)
  tpid=$(tb_env_get "$envfile" TESTBED_REGISTRY_TOKEN_PID)
  tb_stop "$pid" docker-registry
  tb_stop "$tpid" token-issuer
  if tb_alive "$pid" || tb_alive "$tpid"; then
    tb_say "$name: could not stop docker-registry ($pid) or token-issuer ($tpid)"
    return 1
  fi
  rm -rf "$envfile" "$state"
  tb_say "$name stopped"
}

# Every registry this TESTBED_DIR knows of (registry.sh and registry-notify.sh write the same
# env file); non-zero when one of them would not stop.
stop_all() {
  local f rc=0
  for f in "$TESTBED_DIR"/*.env; do
    [ -f "$f" ] && grep -q '^export TESTBED_REGISTRY_PID=' "$f" || continue
    name=$(basename "$f" .env) state=$TESTBED_DIR/$name envfile=$f
    stop || rc=1
  done
  return "$rc"
}

start() {
  tb_need docker-registry curl openssl python3 setsid
  [ "$auth" = basic ] && tb_need htpasswd
  if [ -f "$envfile" ]; then
    if [ "$(tb_env_get "$envfile" TESTBED_REGISTRY_MODE)" = "$auth/$tls" ] && running; then
      tb_say "$name already running"
      grep '^export' "$envfile"
      return 0
    fi
    stop
  fi
  rm -rf "$state"
  mkdir -p "$state/data"
  local t0 scheme=http ca="" certdir="" user="" pass=""
  t0=$(tb_ms)
  if [ "$tls" = 1 ]; then
    tb_make_tls "$state/tls"
    scheme=https ca=$state/tls/ca.crt certdir=$state/tls/certs.d
  fi
  if [ "$auth" != none ]; then
    user=ferry
    pass=$(openssl rand -hex 12)
  fi

  local tpid="" realm="" service="" issuer="" tlog=""
  if [ "$auth" = token ]; then
    service=ferry-testbed-registry issuer=ferry-testbed-issuer tlog=$state/token.log
    mkdir -p "$state/token"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=ferry testbed token signer" \
      -keyout "$state/token/sign.key" -out "$state/token/sign.crt" 2>/dev/null ||
      tb_die "openssl: token signing key"
    local targs=(--key "$state/token/sign.key" --cert "$state/token/sign.crt"
      --service "$service" --issuer "$issuer" --user "$user:$pass:rw" --user "reader:$pass:ro"
      --log "$state/token-requests.log")
    [ "$tls" = 1 ] && targs+=(--tls-cert "$state/tls/server.crt" --tls-key "$state/tls/server.key")
    local tport attempt
    for attempt in 1 2 3; do
      tport=$(tb_free_port)
      tpid=$(tb_spawn "$tlog" python3 "$here/token_issuer.py" --port "$tport" "${targs[@]}")
      tb_wait "$tpid" "$tlog" tb_tcp_open "$tport" && break
      tb_stop "$tpid" token-issuer
      tpid=""
      [ "$attempt" = 3 ] && tb_die "token issuer did not start"
    done
    realm=$scheme://$TB_HOST:$tport/token
  fi
  [ "$auth" = basic ] && { htpasswd -Bbn "$user" "$pass" >"$state/htpasswd" || tb_die "htpasswd failed"; }

  local port pid="" attempt
  for attempt in 1 2 3; do
    port=$(tb_free_port)
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
      if [ "$tls" = 1 ]; then
        echo "  tls: {certificate: $state/tls/server.crt, key: $state/tls/server.key}"
      fi
      case $auth in
        basic) echo "auth: {htpasswd: {realm: ferry-testbed, path: $state/htpasswd}}" ;;
        token) echo "auth: {token: {realm: \"$realm\", service: $service, issuer: $issuer, rootcertbundle: $state/token/sign.crt}}" ;;
      esac
    } >"$state/config.yml"
    pid=$(tb_spawn "$state/registry.log" env -i PATH="$PATH" HOME="${HOME:-/root}" \
      docker-registry serve "$state/config.yml")
    tb_wait "$pid" "$state/registry.log" answers "$scheme://$TB_HOST:$port" "$ca" && break
    tb_stop "$pid" docker-registry
    pid=""
    if [ "$attempt" = 3 ]; then
      tb_stop "$tpid" token-issuer
      tb_die "docker-registry did not start"
    fi
  done

  local sk="--tls-verify=false" skc="--src-tls-verify=false --dest-tls-verify=false"
  if [ "$tls" = 1 ]; then
    sk="--cert-dir=$certdir" skc="--src-cert-dir=$certdir --dest-cert-dir=$certdir"
  fi
  if [ -n "$user" ]; then
    sk="$sk --creds=$user:$pass" skc="$skc --src-creds=$user:$pass --dest-creds=$user:$pass"
  fi
  tb_env_write "$envfile" \
    TESTBED_REGISTRY_NAME="$name" \
    TESTBED_REGISTRY_MODE="$auth/$tls" \
    TESTBED_REGISTRY_AUTH="$auth" \
    TESTBED_REGISTRY_TLS="$tls" \
    TESTBED_REGISTRY_URL="$scheme://$TB_HOST:$port" \
    TESTBED_REGISTRY_HOST="$TB_HOST:$port" \
    TESTBED_REGISTRY_PORT="$port" \
    TESTBED_REGISTRY_PID="$pid" \
    TESTBED_REGISTRY_CA="$ca" \
    TESTBED_REGISTRY_CERT_DIR="$certdir" \
    TESTBED_REGISTRY_USER="$user" \
    TESTBED_REGISTRY_PASSWORD="$pass" \
    TESTBED_REGISTRY_READONLY_USER="$([ "$auth" = token ] && echo reader || true)" \
    TESTBED_REGISTRY_TOKEN_REALM="$realm" \
    TESTBED_REGISTRY_TOKEN_SERVICE="$service" \
    TESTBED_REGISTRY_TOKEN_PID="$tpid" \
    TESTBED_REGISTRY_TOKEN_REQUESTS="$([ "$auth" = token ] && echo "$state/token-requests.log" || true)" \
    TESTBED_REGISTRY_DATA="$state/data" \
    TESTBED_REGISTRY_LOG="$state/registry.log" \
    TESTBED_REGISTRY_SKOPEO_FLAGS="$sk" \
    TESTBED_REGISTRY_SKOPEO_COPY_FLAGS="$skc"
  tb_say "$name up at $scheme://$TB_HOST:$port (auth=$auth tls=$tls) in $(($(tb_ms) - t0)) ms; env: $envfile"
  grep '^export' "$envfile"
}

mkdir -p "$TESTBED_DIR"
case $cmd in
  start) start ;;
  stop) stop ;;
  stop-all) stop_all ;;
  status) if running; then grep '^export' "$envfile"; else tb_say "$name not running"; exit 1; fi ;;
  *) usage ;;
esac
