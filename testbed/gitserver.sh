#!/usr/bin/env bash
# Real Git servers on 127.0.0.1 for Ferry's tests; all serve one directory of bare repos.
#   gitserver.sh start  [http|ssh|daemon|all]... [--auth none|basic] [--tls]   (default: all)
#   gitserver.sh stop   [http|ssh|daemon|all]...                               (default: all)
#   gitserver.sh status [http|ssh|daemon|all]...
#   gitserver.sh repo NAME [--seed]     bare NAME.git (--seed: one commit on main); prints its path
# http: one lighttpd + git-http-backend (push on) with a plain-HTTP port and, with --tls, an HTTPS
# port (private CA) too; --auth basic protects both. ssh: sshd -D with an ed25519 key and a
# known_hosts file. daemon: git daemon --enable=receive-pack. Env for tests: $TESTBED_DIR/git.env
# (TESTBED_DIR defaults to /tmp/ferry-testbed). Self-contained: sources nothing.
set -euo pipefail

TESTBED_DIR="${TESTBED_DIR:-/tmp/ferry-testbed}"
TESTBED_TIMEOUT="${TESTBED_TIMEOUT:-20}"
HOST=127.0.0.1
case "$TESTBED_DIR" in /*) ;; *) TESTBED_DIR="$(pwd)/$TESTBED_DIR" ;; esac
case "$TESTBED_DIR" in *[[:space:]\'\"\\]*) echo "gitserver: TESTBED_DIR must not contain spaces or quotes" >&2; exit 1 ;; esac

GDIR="$TESTBED_DIR/git"
ROOT="$GDIR/repos"
ENVF="$TESTBED_DIR/git.env"
SERVICES=(http ssh daemon)

die() { echo "gitserver: error: $*" >&2; exit 1; }
say() { echo "gitserver: $*" >&2; }
usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
need() { local c; for c in "$@"; do command -v "$c" >/dev/null 2>&1 || [ -x "$c" ] || die "'$c' not found (install git, lighttpd, lighttpd-mod-openssl, openssh-server)"; done; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# alive PID: running and not a zombie (PID 1 may reap orphans late; kill -0 succeeds on zombies)
alive() {
  [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null || return 1
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# wait_ready PID LOG CHECK...: poll CHECK (bounded by TESTBED_TIMEOUT) while PID lives
wait_ready() {
  local pid=$1 log=$2; shift 2
  local deadline=$(( $(date +%s) + TESTBED_TIMEOUT ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    if ! alive "$pid"; then say "process $pid exited early; tail of $log:"; tail -n 20 "$log" >&2 || true; return 1; fi
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.05
  done
  say "timed out after ${TESTBED_TIMEOUT}s; tail of $log:"; tail -n 20 "$log" >&2 || true
  return 1
}

spawn() {  # spawn LOG CMD...: detached in its own session; prints the PID
  local log=$1; shift
  # 9>&-: the server must not inherit (and so hold forever) the script's lock
  setsid "$@" >>"$log" 2>&1 </dev/null 9>&- &
  echo $!
}

stop_pid() {  # TERM (background jobs ignore INT), then KILL after 5 s
  local pid=${1:-} _i
  alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _i in $(seq 1 100); do alive "$pid" || return 0; sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
}

tcp_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }
http_answers() {  # any HTTP status from the server counts
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 ${2:+--cacert "$2"} "$1") || true
  [ "$code" != 000 ]
}
ssh_banner() {
  local line
  exec 3<>"/dev/tcp/$HOST/$1" || return 1
  IFS= read -r -t 2 line <&3 || true
  exec 3<&- 3>&-
  case "$line" in SSH-2.0-*) return 0 ;; esac
  return 1
}

write_env() {  # write_env FILE KEY=VALUE... (single-quoted values; no quotes allowed inside)
  local file=$1 kv; shift
  {
    echo "# written by ferry testbed/gitserver.sh; source this file"
    for kv in "$@"; do
      case "${kv#*=}" in *"'"*) die "quote in value: ${kv%%=*}" ;; esac
      printf "export %s='%s'\n" "${kv%%=*}" "${kv#*=}"
    done
  } >"$file.tmp"
  mv "$file.tmp" "$file"
}
env_get() { [ -f "$1" ] || return 0; sed -n "s/^export $2='\(.*\)'\$/\1/p" "$1" | tail -n 1; }
svc_env() { echo "$GDIR/$1.env"; }
svc_pid() { env_get "$(svc_env "$1")" "TESTBED_GIT_$(echo "$1" | tr '[:lower:]' '[:upper:]')_PID"; }
running() { [ -f "$(svc_env "$1")" ] && alive "$(svc_pid "$1")"; }

write_git_env() {  # git.env = common variables + each running service's variables
  local s
  {
    echo "# written by ferry testbed/gitserver.sh; source this file"
    printf "export TESTBED_GIT_ROOT='%s'\nexport TESTBED_GIT_FILE_URL='file://%s'\n" "$ROOT" "$ROOT"
    for s in "${SERVICES[@]}"; do [ -f "$(svc_env "$s")" ] && grep '^export' "$(svc_env "$s")"; done
    true
  } >"$ENVF.tmp"
  mv "$ENVF.tmp" "$ENVF"
}

make_repo() {  # make_repo NAME SEED: prints the bare repo's path
  local name=${1%.git} seed=$2 path tmp
  case "$name" in ''|*/*|.*|*[[:space:]]*) die "bad repo name '$name'" ;; esac
  path="$ROOT/$name.git"
  mkdir -p "$ROOT"
  if [ ! -d "$path" ]; then
    git init -q --bare --initial-branch=main "$path"
    git -C "$path" config http.receivepack true
    git -C "$path" config receive.advertisePushOptions true
  fi
  if [ "$seed" = 1 ] && ! git -C "$path" rev-parse -q --verify refs/heads/main >/dev/null; then
    tmp=$(mktemp -d)
    git -C "$tmp" init -q --initial-branch=main
    echo "seed of $name" >"$tmp/README"
    git -C "$tmp" add README
    git -C "$tmp" -c user.name=testbed -c user.email=testbed@example.invalid commit -q -m seed
    git -C "$tmp" push -q "$path" main
    rm -rf "$tmp"
  fi
  echo "$path"
}

make_tls() {  # CA + server cert for 127.0.0.1/localhost (EC P-256); reused when present
  local d=$1
  [ -s "$d/server.crt" ] && [ -s "$d/ca.crt" ] && return 0
  mkdir -p "$d"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$d/ca.key" -out "$d/ca.crt" -days 3650 -subj "/CN=ferry testbed CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null ||
    die "openssl could not make the CA"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$d/server.key" -out "$d/server.csr" -subj "/CN=localhost" 2>/dev/null ||
    die "openssl could not make the server key"
  printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >"$d/server.ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
    -out "$d/server.crt" -days 825 -extfile "$d/server.ext" 2>/dev/null ||
    die "openssl could not sign the server certificate"
}

# ------------------------------------------------------------------ http (+ https)
start_http() {
  need lighttpd curl openssl
  local S="$GDIR/http" backend port tport="" pid="" try ca="" user="" pass="" ruser="" rpass=""
  backend="$(git --exec-path)/git-http-backend"
  [ -x "$backend" ] || die "git-http-backend not found in $(git --exec-path)"
  if [ "$TLS" = 1 ] && [ ! -e /usr/lib/lighttpd/mod_openssl.so ]; then die "lighttpd-mod-openssl is missing"; fi
  rm -rf "$S"; mkdir -p "$S/www"
  if [ "$TLS" = 1 ]; then make_tls "$GDIR/tls"; ca="$GDIR/tls/ca.crt"; fi
  if [ "$AUTH" = basic ]; then
    user=${TESTBED_GIT_USER:-gituser}; pass=${TESTBED_GIT_PASSWORD:-$(openssl rand -hex 12)}
    # A second, read-only user: fetches work, pushes are refused (401), like a read-only token.
    ruser=reader; rpass=$(openssl rand -hex 12)
    printf '%s:%s\n%s:%s\n' "$user" "$pass" "$ruser" "$rpass" >"$S/users"; chmod 600 "$S/users"
  fi
  for try in 1 2 3; do
    port=$(free_port)
    [ "$TLS" = 1 ] && tport=$(free_port)
    {
      echo "server.document-root = \"$S/www\""
      echo "server.bind = \"$HOST\""
      echo "server.port = $port"
      echo "server.errorlog = \"$S/error.log\""
      echo "server.modules = ( \"mod_alias\", \"mod_setenv\", \"mod_cgi\", \"mod_auth\", \"mod_authn_file\"$([ "$TLS" = 1 ] && echo ', "mod_openssl"') )"
      echo "alias.url = ( \"/git\" => \"$backend\" )"
      echo "\$HTTP[\"url\"] =~ \"^/git\" {"
      echo "  cgi.assign = ( \"\" => \"\" )"
      echo "  setenv.set-environment = ( \"GIT_PROJECT_ROOT\" => \"$ROOT\", \"GIT_HTTP_EXPORT_ALL\" => \"1\","
      echo "    \"PATH\" => \"$PATH\", \"GIT_CONFIG_COUNT\" => \"3\","
      echo "    \"GIT_CONFIG_KEY_0\" => \"http.receivepack\", \"GIT_CONFIG_VALUE_0\" => \"true\","
      echo "    \"GIT_CONFIG_KEY_1\" => \"safe.directory\", \"GIT_CONFIG_VALUE_1\" => \"*\","
      echo "    \"GIT_CONFIG_KEY_2\" => \"receive.advertisePushOptions\", \"GIT_CONFIG_VALUE_2\" => \"true\" )"
      if [ "$AUTH" = basic ]; then
        echo "  auth.backend = \"plain\""
        echo "  auth.backend.plain.userfile = \"$S/users\""
        echo "  auth.require = ( \"\" => ( \"method\" => \"basic\", \"realm\" => \"ferry-testbed-git\", \"require\" => \"valid-user\" ) )"
        # Pushes (the advertisement and the pack) need the read-write user.
        local push_only="auth.require = ( \"\" => ( \"method\" => \"basic\", \"realm\" => \"ferry-testbed-git\", \"require\" => \"user=$user\" ) )"
        echo "  \$HTTP[\"querystring\"] =~ \"service=git-receive-pack\" { $push_only }"
        echo "  \$HTTP[\"url\"] =~ \"/git-receive-pack\$\" { $push_only }"
      fi
      echo "}"
      if [ "$TLS" = 1 ]; then
        echo "\$SERVER[\"socket\"] == \"$HOST:$tport\" {"
        echo "  ssl.engine = \"enable\""
        echo "  ssl.pemfile = \"$GDIR/tls/server.crt\""
        echo "  ssl.privkey = \"$GDIR/tls/server.key\""
        echo "}"
      fi
    } >"$S/lighttpd.conf"
    lighttpd -tt -f "$S/lighttpd.conf" >"$S/lighttpd.log" 2>&1 || { cat "$S/lighttpd.log" >&2; die "bad lighttpd config $S/lighttpd.conf"; }
    pid=$(spawn "$S/lighttpd.log" lighttpd -D -f "$S/lighttpd.conf")
    if wait_ready "$pid" "$S/error.log" http_answers "http://$HOST:$port/" &&
       { [ "$TLS" = 0 ] || wait_ready "$pid" "$S/error.log" http_answers "https://$HOST:$tport/" "$ca"; }; then
      break
    fi
    stop_pid "$pid"; pid=""
    [ "$try" = 3 ] && die "lighttpd did not start (see $S/error.log)"
  done
  local https="" authurl=""
  [ "$TLS" = 1 ] && https="https://$HOST:$tport/git"
  [ "$AUTH" = basic ] && authurl="http://$user:$pass@$HOST:$port/git"
  write_env "$(svc_env http)" \
    TESTBED_GIT_HTTP_URL="http://$HOST:$port/git" TESTBED_GIT_HTTP_PORT="$port" \
    TESTBED_GIT_HTTPS_URL="$https" TESTBED_GIT_HTTPS_PORT="$tport" TESTBED_GIT_HTTP_CA="$ca" \
    TESTBED_GIT_HTTP_AUTH_URL="$authurl" TESTBED_GIT_HTTP_AUTH_MODE="$AUTH" TESTBED_GIT_HTTP_TLS="$TLS" \
    TESTBED_GIT_HTTP_USER="$user" TESTBED_GIT_HTTP_PASSWORD="$pass" \
    TESTBED_GIT_HTTP_READER_USER="$ruser" TESTBED_GIT_HTTP_READER_PASSWORD="$rpass" \
    TESTBED_GIT_HTTP_PID="$pid" TESTBED_GIT_HTTP_LOG="$S/error.log"
  say "http: http://$HOST:$port/git/<repo>.git${https:+ and $https/<repo>.git} (auth=$AUTH)"
}

# ------------------------------------------------------------------ ssh
start_ssh() {
  need /usr/sbin/sshd ssh ssh-keygen
  local S="$GDIR/ssh" port pid="" try me
  me=$(id -un)
  rm -rf "$S"; mkdir -p "$S"
  # as root, sshd refuses to start without its privilege-separation directory
  if [ "$(id -u)" = 0 ]; then mkdir -p /run/sshd && chmod 755 /run/sshd; fi
  ssh-keygen -q -t ed25519 -N '' -C ferry-testbed-host -f "$S/host_ed25519"
  ssh-keygen -q -t ed25519 -N '' -C ferry-testbed-client -f "$S/id_ed25519"
  cp "$S/id_ed25519.pub" "$S/authorized_keys"; chmod 600 "$S/authorized_keys"
  for try in 1 2 3; do
    port=$(free_port)
    cat >"$S/sshd_config" <<EOF
Port $port
ListenAddress $HOST
HostKey $S/host_ed25519
PidFile none
AuthorizedKeysFile $S/authorized_keys
AllowUsers $me
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
PrintMotd no
LogLevel INFO
EOF
    pid=$(spawn "$S/sshd.log" /usr/sbin/sshd -D -e -f "$S/sshd_config")
    if wait_ready "$pid" "$S/sshd.log" ssh_banner "$port"; then break; fi
    stop_pid "$pid"; pid=""
    [ "$try" = 3 ] && die "sshd did not start (see $S/sshd.log)"
  done
  echo "[$HOST]:$port $(cut -d' ' -f1,2 "$S/host_ed25519.pub")" >"$S/known_hosts"
  write_env "$(svc_env ssh)" \
    TESTBED_GIT_SSH_URL="ssh://$me@$HOST:$port$ROOT" TESTBED_GIT_SSH_PORT="$port" TESTBED_GIT_SSH_USER="$me" \
    TESTBED_GIT_SSH_KEY="$S/id_ed25519" TESTBED_GIT_SSH_KNOWN_HOSTS="$S/known_hosts" \
    TESTBED_GIT_SSH_COMMAND="ssh -F /dev/null -i $S/id_ed25519 -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile=$S/known_hosts -o StrictHostKeyChecking=yes" \
    TESTBED_GIT_SSH_PID="$pid" TESTBED_GIT_SSH_LOG="$S/sshd.log"
  say "ssh: ssh://$me@$HOST:$port$ROOT/<repo>.git"
}

# ------------------------------------------------------------------ daemon
start_daemon() {
  local S="$GDIR/daemon" port pid="" try bin
  bin="$(git --exec-path)/git-daemon"
  [ -x "$bin" ] || die "git-daemon not found in $(git --exec-path)"
  rm -rf "$S"; mkdir -p "$S"
  for try in 1 2 3; do
    port=$(free_port)
    # the binary itself (not `git daemon`) so that the PID is the server's
    pid=$(spawn "$S/daemon.log" "$bin" --reuseaddr --listen="$HOST" --port="$port" --base-path="$ROOT" \
      --export-all --enable=receive-pack --informative-errors --verbose)
    if wait_ready "$pid" "$S/daemon.log" tcp_open "$port"; then break; fi
    stop_pid "$pid"; pid=""
    [ "$try" = 3 ] && die "git daemon did not start (see $S/daemon.log)"
  done
  write_env "$(svc_env daemon)" \
    TESTBED_GIT_DAEMON_URL="git://$HOST:$port" TESTBED_GIT_DAEMON_PORT="$port" \
    TESTBED_GIT_DAEMON_PID="$pid" TESTBED_GIT_DAEMON_LOG="$S/daemon.log" \
    TESTBED_GIT_DAEMON_VERBOSE=1
  say "daemon: git://$HOST:$port/<repo>.git"
}

stop_one() {
  local s=$1
  [ -f "$(svc_env "$s")" ] || return 0
  stop_pid "$(svc_pid "$s")"
  rm -f "$(svc_env "$s")"; rm -rf "${GDIR:?}/$s"
  say "$s: stopped"
}

do_start() {
  need git setsid python3
  local s mode
  mkdir -p "$ROOT"
  [ -d "$ROOT/test.git" ] || make_repo test 1 >/dev/null
  for s in "${TARGETS[@]}"; do
    if running "$s"; then
      mode=""
      [ "$s" = http ] && mode="$(env_get "$(svc_env http)" TESTBED_GIT_HTTP_AUTH_MODE)/$(env_get "$(svc_env http)" TESTBED_GIT_HTTP_TLS)"
      [ "$s" = daemon ] && mode="$(env_get "$(svc_env daemon)" TESTBED_GIT_DAEMON_VERBOSE)"
      if { [ "$s" != http ] && [ "$s" != daemon ]; } || [ "$mode" = "$AUTH/$TLS" ] ||
        { [ "$s" = daemon ] && [ "$mode" = 1 ]; }; then say "$s: already running"; continue; fi
      stop_one "$s"
    fi
    "start_$s"
  done
  write_git_env
  grep '^export' "$ENVF"
}

do_stop() {
  local s left=0
  for s in "${TARGETS[@]}"; do stop_one "$s"; done
  for s in "${SERVICES[@]}"; do [ -f "$(svc_env "$s")" ] && left=1; done
  if [ "$left" = 0 ]; then rm -f "$ENVF"; rm -rf "$GDIR"; else write_git_env; fi
}

do_status() {
  local s rc=0
  for s in "${TARGETS[@]}"; do
    if running "$s"; then say "$s: running"; else say "$s: not running"; rc=1; fi
  done
  [ -f "$ENVF" ] && grep '^export' "$ENVF"
  return "$rc"
}

cmd=${1:-}; [ $# -gt 0 ] && shift
WHAT=() AUTH=none TLS=0 SEED=0 REPO=""
while [ $# -gt 0 ]; do
  case "$1" in
    http|ssh|daemon) WHAT+=("$1") ;;
    all) WHAT+=("${SERVICES[@]}") ;;
    --auth) AUTH=${2:-}; shift ;;
    --auth=*) AUTH=${1#*=} ;;
    --tls) TLS=1 ;;
    --seed) SEED=1 ;;
    -h|--help) usage ;;
    -*) die "unknown option '$1'" ;;
    *) if [ "$cmd" = repo ] && [ -z "$REPO" ]; then REPO=$1; else die "unexpected argument '$1'"; fi ;;
  esac
  shift
done
case "$AUTH" in none|basic) ;; *) die "--auth must be none or basic" ;; esac
TARGETS=()
for s in "${SERVICES[@]}"; do
  case " ${WHAT[*]:-${SERVICES[*]}} " in *" $s "*) TARGETS+=("$s") ;; esac
done

mkdir -p "$TESTBED_DIR"
# Several test processes may call this at once: serialize every command on one lock.
exec 9>"$TESTBED_DIR/gitserver.lock"
flock -w "$TESTBED_TIMEOUT" 9 || die "another gitserver.sh holds $TESTBED_DIR/gitserver.lock"
case "$cmd" in
  start) do_start ;;
  stop) do_stop ;;
  status) do_status ;;
  repo) [ -n "$REPO" ] || usage; need git; make_repo "$REPO" "$SEED" ;;
  *) usage ;;
esac
