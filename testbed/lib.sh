# shellcheck shell=bash
# Shared helpers for Ferry's test-bed scripts (sourced, never run).
# Every server binds 127.0.0.1 on a kernel-chosen port; state lives under $TESTBED_DIR only.

TESTBED_DIR=${TESTBED_DIR:-/tmp/ferry-testbed}
TESTBED_TIMEOUT=${TESTBED_TIMEOUT:-20}
TB_HOST=127.0.0.1

tb_say() { echo "testbed: $*" >&2; }
tb_die() { echo "testbed: error: $*" >&2; exit 1; }

case $TESTBED_DIR in /*) ;; *) TESTBED_DIR=$PWD/$TESTBED_DIR ;; esac
case $TESTBED_DIR in *[[:space:]\'\"\\]*) tb_die "TESTBED_DIR may not contain spaces or quotes" ;; esac

tb_need() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || tb_die "'$c' is missing; run: bash $(dirname "$0")/install.sh"
  done
}

tb_ms() { date +%s%3N; }

# A port the kernel considers free right now (callers retry the start on a lost race).
tb_free_port() {
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# tb_alive PID: running and not a zombie (kill -0 succeeds on zombies awaiting reaping).
tb_alive() {
  local pid=${1:-} state
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  state=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# tb_spawn LOG CMD...: start CMD in its own session, detached; prints the PID.
tb_spawn() {
  local log=$1
  shift
  (
    # Close inherited descriptors (e.g. a caller's flock) so the server does not hold them.
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    exec setsid "$@" >>"$log" 2>&1 </dev/null
  ) &
  echo $!
}

# tb_wait PID LOG CHECK...: poll CHECK (bounded by TESTBED_TIMEOUT) while PID lives.
tb_wait() {
  local pid=$1 log=$2
  shift 2
  local deadline=$(($(date +%s) + TESTBED_TIMEOUT))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    if ! tb_alive "$pid"; then
      tb_say "process $pid exited during start-up; tail of $log:"
      tail -n 20 "$log" >&2 || true
      return 1
    fi
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.05
  done
  tb_say "no answer after ${TESTBED_TIMEOUT}s; tail of $log:"
  tail -n 20 "$log" >&2 || true
  return 1
}

tb_tcp_open() { (exec 3<>"/dev/tcp/$TB_HOST/$1") 2>/dev/null; }

# tb_stop PID NAME: SIGTERM (background jobs ignore SIGINT), SIGKILL after 5 s.
tb_stop() {
  local pid=${1:-} name=${2:-process} i
  tb_alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 100); do
    tb_alive "$pid" || return 0
    sleep 0.05
  done
  tb_say "$name ($pid) survived SIGTERM; killing"
  kill -KILL "$pid" 2>/dev/null || true
  for i in $(seq 40); do
    tb_alive "$pid" || return 0
    sleep 0.05
  done
}

# tb_env_write FILE K=V...: `export K='V'` lines, readable by `source` and by simple parsers.
tb_env_write() {
  local file=$1 kv
  shift
  {
    echo "# ferry testbed env file; source it"
    for kv in "$@"; do
      case ${kv#*=} in *"'"*) tb_die "single quote in value of ${kv%%=*}" ;; esac
      printf "export %s='%s'\n" "${kv%%=*}" "${kv#*=}"
    done
  } >"$file.tmp"
  mv -f "$file.tmp" "$file"
}

tb_env_get() {
  [ -f "$1" ] || return 0
  sed -n "s/^export $2='\\(.*\\)'\$/\\1/p" "$1" | tail -n 1
}

# tb_make_tls DIR: EC P-256 CA plus a server certificate for 127.0.0.1/localhost
# (CA:TRUE + keyCertSign on the CA, serverAuth + SAN on the leaf, as webpki requires).
tb_make_tls() {
  local d=$1
  mkdir -p "$d/certs.d"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -keyout "$d/ca.key" -out "$d/ca.crt" -subj "/CN=ferry testbed CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null || tb_die "openssl: CA"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$d/server.key" -out "$d/server.csr" -subj "/CN=localhost" 2>/dev/null ||
    tb_die "openssl: server key"
  printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth" >"$d/server.ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
    -days 825 -extfile "$d/server.ext" -out "$d/server.crt" 2>/dev/null || tb_die "openssl: sign"
  # containers-image (skopeo --cert-dir) trusts every *.crt in a directory
  cp "$d/ca.crt" "$d/certs.d/ca.crt"
}
