#!/usr/bin/env bash
# A real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver and kube-controller-manager,
# built from pinned Go modules, plus the real flux CLI and Flux's CRDs.
#
#   bash testbed/cluster.sh build [all|k8s|flux|crds|flux-controllers|flux-source]
#   bash testbed/cluster.sh start [--name NAME] [--port PORT] [--etcd-port PORT]
#   bash testbed/cluster.sh stop [--name NAME]
#   bash testbed/cluster.sh status [--name NAME]
#   bash testbed/cluster.sh restart-apiserver [--name NAME]   (same port, same etcd: for tests)
#
# `build` builds whatever is missing from the cache ($FERRY_TESTBED_CACHE, default
# ~/.cache/ferry-testbed, one folder per version) and prints how long each build took. `all` (the
# default) is what the tests need; `flux-controllers` (Flux's image-reflector-controller and
# image-automation-controller, for scripts/compare-flux.sh) and `flux-source` (Flux's
# source-controller and kustomize-controller, so that compare-flux.sh can apply Git as Flux does)
# are opt-in.
# `start` writes $TESTBED_DIR/NAME.env (NAME defaults to "cluster") with TESTBED_KUBECONFIG (admin),
# TESTBED_KUBECTL, TESTBED_FLUX, TESTBED_K8S_VERSION, TESTBED_FLUX_CRDS and the pids it started.
# Ports are chosen by the kernel unless --port/--etcd-port name them. There is no kubelet or
# scheduler: Deployments get ReplicaSets and revisions, Pods stay Pending.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

# Pinned versions. The Kubernetes and etcd versions are also in testbed/k8s/go.mod, flux's in
# testbed/flux/go.mod and the controllers' in testbed/flux-image/go.mod; the CRD modules only here.
K8S_VERSION=v1.37.2
FLUX_VERSION=v2.9.5
SOURCE_CONTROLLER_VERSION=${TESTBED_SOURCE_CONTROLLER_VERSION:-v1.9.5}
IRC_VERSION=${TESTBED_IRC_VERSION:-v1.2.3}
IAC_VERSION=${TESTBED_IAC_VERSION:-v1.2.4}
# source-controller and kustomize-controller as binaries (testbed/flux-source/go.mod pins them).
SC_BIN_VERSION=v1.9.5
KC_VERSION=v1.9.5
GO_MIN=1.26

CACHE=${FERRY_TESTBED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry-testbed}
K8S_BIN=$CACHE/k8s-$K8S_VERSION
FLUX_BIN=$CACHE/flux-$FLUX_VERSION
CRD_DIR=$CACHE/crds-source-$SOURCE_CONTROLLER_VERSION-irc-$IRC_VERSION-iac-$IAC_VERSION
FLUXCTL_BIN=$CACHE/flux-controllers-irc-$IRC_VERSION-iac-$IAC_VERSION
FLUXSRC_BIN=$CACHE/flux-source-sc-$SC_BIN_VERSION-kc-$KC_VERSION

usage() { sed -n '5,9p' "$0" | sed 's/^# *//' >&2; exit 2; }

# ---------------------------------------------------------------------------------------------
# build

go_env() {
  local go=${TESTBED_GO:-go}
  command -v "$go" >/dev/null 2>&1 ||
    tb_die "Go is not installed (no '$go' on PATH); building the test bed needs Go >= $GO_MIN (set TESTBED_GO to its path)"
  GO=$(command -v "$go")
  local v
  v=$("$GO" env GOVERSION 2>/dev/null) || tb_die "'$GO env GOVERSION' failed"
  v=${v#go}
  printf '%s\n%s\n' "$GO_MIN" "$v" | sort -V -C || tb_die "Go $v is too old; the test bed needs Go >= $GO_MIN"
  GO_VERSION=$v
  # Never fetch another toolchain; modules come from the proxy only.
  export GOTOOLCHAIN=local GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
}

# go_or_explain LOG CMD...: run a go command; on failure, name any module the proxy did not serve.
go_or_explain() {
  local log=$1
  shift
  if "$@" >"$log" 2>&1; then return 0; fi
  local missing
  missing=$(grep -oE '[A-Za-z0-9._~/-]+@v[0-9][^ :]*: (reading|verifying) [^ ]*: (403|404|410)' "$log" |
    sed -E 's/: (reading|verifying).*//' | sort -u | tr '\n' ' ') || true
  [ -n "$missing" ] || missing=$(grep -oE 'module [A-Za-z0-9._~/-]+: reading [^ ]*: (403|404|410)' "$log" |
    sed -E 's/^module //; s/: reading.*//' | sort -u | tr '\n' ' ') || true
  tail -n 15 "$log" >&2
  if [ -n "$missing" ]; then
    tb_die "the Go module proxy does not serve: $missing(full log: $log)"
  fi
  tb_die "'$*' failed (full log: $log)"
}

# build_bin OUT PKG LDFLAGS: build PKG into OUT (atomically), printing time and peak memory.
build_bin() {
  local out=$1 pkg=$2 ldflags=$3 s rss
  s=$(date +%s)
  mkdir -p "$(dirname "$out")"
  go_or_explain "$out.build.log" /usr/bin/time -f '%M' -o "$out.rss" \
    "$GO" build -trimpath -pgo=off -tags=notest -ldflags "$ldflags" -o "$out.tmp" "$pkg"
  rss=$(tail -n 1 "$out.rss" 2>/dev/null || echo 0)
  mv -f "$out.tmp" "$out"
  rm -f "$out.rss"
  echo "cluster.sh: built $(basename "$out") in $(($(date +%s) - s)) s (peak RSS $((rss / 1024)) MB, Go $GO_VERSION)"
}

k8s_ldflags() {
  local minor=${K8S_VERSION#v1.} ld="-s -w" p
  minor=${minor%%.*}
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ld="$ld -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$ld"
}

build_k8s() {
  local ld name
  ld=$(k8s_ldflags)
  for name in etcd kube-apiserver kube-controller-manager kubectl; do
    [ -x "$K8S_BIN/$name" ] && continue
    local pkg=k8s.io/kubernetes/cmd/$name
    [ "$name" = etcd ] && pkg=go.etcd.io/etcd/server/v3
    (cd "$here/k8s" && build_bin "$K8S_BIN/$name" "$pkg" "$ld")
  done
}

# module_dir MOD@VER: the module's folder in the module cache (downloading it).
module_dir() {
  local log dir
  log=$(mktemp)
  go_or_explain "$log" "$GO" mod download -json "$1"
  dir=$(sed -n 's/^\t"Dir": "\(.*\)",$/\1/p' "$log")
  rm -f "$log"
  [ -d "$dir" ] || tb_die "go mod download $1 gave no folder"
  echo "$dir"
}

build_flux() {
  [ -x "$FLUX_BIN/flux" ] && return 0
  local src
  src=$(module_dir "github.com/fluxcd/flux2/v2@$FLUX_VERSION")
  # The CLI embeds cmd/flux/manifests/*.yaml, which its release build generates and the module does
  # not carry: a copy with a placeholder builds everything but `install`/`bootstrap`.
  rm -rf "$here/flux/flux2-src"
  cp -r "$src" "$here/flux/flux2-src"
  chmod -R u+w "$here/flux/flux2-src"
  mkdir -p "$here/flux/flux2-src/cmd/flux/manifests"
  echo "# placeholder: install and bootstrap are not used by the test bed" \
    >"$here/flux/flux2-src/cmd/flux/manifests/placeholder.yaml"
  (cd "$here/flux" && build_bin "$FLUX_BIN/flux" github.com/fluxcd/flux2/v2/cmd/flux \
    "-s -w -X main.VERSION=${FLUX_VERSION#v}")
  rm -rf "$here/flux/flux2-src"
}

build_crds() {
  [ -f "$CRD_DIR/.complete" ] && return 0
  local s src irc iac
  s=$(date +%s)
  src=$(module_dir "github.com/fluxcd/source-controller@$SOURCE_CONTROLLER_VERSION")
  irc=$(module_dir "github.com/fluxcd/image-reflector-controller@$IRC_VERSION")
  iac=$(module_dir "github.com/fluxcd/image-automation-controller@$IAC_VERSION")
  rm -rf "$CRD_DIR"
  mkdir -p "$CRD_DIR/source" "$CRD_DIR/image"
  cp "$src"/config/crd/bases/source.toolkit.fluxcd.io_*.yaml "$CRD_DIR/source/"
  cp "$irc"/config/crd/bases/*.yaml "$iac"/config/crd/bases/*.yaml "$CRD_DIR/image/"
  chmod -R u+w "$CRD_DIR"
  touch "$CRD_DIR/.complete"
  echo "cluster.sh: fetched CRDs (source-controller $SOURCE_CONTROLLER_VERSION, image-reflector-controller $IRC_VERSION, image-automation-controller $IAC_VERSION) in $(($(date +%s) - s)) s"
}

build_flux_controllers() {
  local name
  for name in image-reflector-controller image-automation-controller; do
    [ -x "$FLUXCTL_BIN/$name" ] && continue
    (cd "$here/flux-image" && build_bin "$FLUXCTL_BIN/$name" "github.com/fluxcd/$name" "-s -w")
  done
}

# source-controller, kustomize-controller, and the CRDs they serve (source's and Kustomization).
build_flux_source() {
  local name kc
  for name in source-controller kustomize-controller; do
    [ -x "$FLUXSRC_BIN/$name" ] && continue
    (cd "$here/flux-source" && build_bin "$FLUXSRC_BIN/$name" "github.com/fluxcd/$name" "-s -w")
  done
  [ -f "$FLUXSRC_BIN/crds/.complete" ] && return 0
  kc=$(module_dir "github.com/fluxcd/kustomize-controller@$KC_VERSION")
  mkdir -p "$FLUXSRC_BIN/crds"
  cp "$kc"/config/crd/bases/*.yaml "$FLUXSRC_BIN/crds/"
  chmod -R u+w "$FLUXSRC_BIN/crds"
  touch "$FLUXSRC_BIN/crds/.complete"
}

build() {
  local what=${1:-all}
  go_env
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.build-lock"
  flock 9 || tb_die "could not lock $CACHE/.build-lock"
  case $what in
    all) build_crds; build_k8s; build_flux ;;
    k8s) build_k8s ;;
    flux) build_flux ;;
    crds) build_crds ;;
    flux-controllers) build_crds; build_flux_controllers ;;
    flux-source) build_crds; build_flux_source ;;
    *) usage ;;
  esac
  echo "cluster.sh: cache $CACHE is complete for '$what'"
}

# ---------------------------------------------------------------------------------------------
# start / stop / status

name=cluster port="" etcd_port=""
parse_run_args() {
  while [ $# -gt 0 ]; do
    case $1 in
      --name) name=${2:-}; shift ;;
      --name=*) name=${1#*=} ;;
      --port) port=${2:-}; shift ;;
      --port=*) port=${1#*=} ;;
      --etcd-port) etcd_port=${2:-}; shift ;;
      --etcd-port=*) etcd_port=${1#*=} ;;
      -h | --help) usage ;;
      *) tb_die "unknown option '$1'" ;;
    esac
    shift
  done
  case $name in '' | */* | *[[:space:]]* | .*) tb_die "bad --name '$name'" ;; esac
  state=$TESTBED_DIR/$name
  envfile=$TESTBED_DIR/$name.env
}

# pid_is PID BINARY: PID is alive and is BINARY (a recycled pid is never ours).
pid_is() {
  tb_alive "$1" || return 1
  local exe
  exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
  [ "$(basename "${exe% (deleted)}")" = "$2" ]
}

# A component's pid from the env file, with the binary it must be.
components=(TESTBED_KCM_PID:kube-controller-manager TESTBED_APISERVER_PID:kube-apiserver TESTBED_ETCD_PID:etcd)

kcurl() {
  curl -fsS --max-time 3 --cacert "$state/pki/ca.crt" --cert "$state/pki/admin.crt" \
    --key "$state/pki/admin.key" "$@"
}
ready() { [ "$(kcurl "https://$TB_HOST:$1/readyz" 2>/dev/null)" = ok ]; }

running() {
  [ -f "$envfile" ] || return 1
  local c
  for c in "${components[@]}"; do
    pid_is "$(tb_env_get "$envfile" "${c%%:*}")" "${c#*:}" || return 1
  done
  ready "$(tb_env_get "$envfile" TESTBED_CLUSTER_PORT)"
}

# Fails loudly on a pid file whose processes are gone: the caller decides to `stop` first.
check_stale() {
  [ -f "$envfile" ] || return 0
  local c pid dead=""
  for c in "${components[@]}"; do
    pid=$(tb_env_get "$envfile" "${c%%:*}")
    pid_is "$pid" "${c#*:}" || dead="$dead ${c#*:}(pid ${pid:-none})"
  done
  [ -z "$dead" ] && return 0
  tb_die "stale pid file $envfile: not running:$dead; run 'bash testbed/cluster.sh stop --name $name' to clean up, then start again"
}

stop() {
  local c pid
  if [ -f "$envfile" ]; then
    for c in "${components[@]}"; do
      pid=$(tb_env_get "$envfile" "${c%%:*}")
      if pid_is "$pid" "${c#*:}"; then tb_stop "$pid" "${c#*:}"; fi
    done
  fi
  rm -rf "$envfile" "$state"
  tb_say "$name stopped"
}

port_free() {
  ! (exec 3<>"/dev/tcp/$TB_HOST/$1") 2>/dev/null &&
    python3 -c 'import socket,sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}

need_port() {
  case $1 in '' | *[!0-9]*) tb_die "$2 must be a port number, not '$1'" ;; esac
  port_free "$1" || tb_die "port $1 on $TB_HOST is taken ($2); choose another or leave $2 out to let the kernel pick"
}

make_pki() {
  local d=$state/pki
  tb_make_tls "$d"
  # The serving certificate also names the in-cluster addresses clients may use.
  printf '%s\n' "subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc" \
    "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth" >"$d/server.ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
    -days 825 -extfile "$d/server.ext" -out "$d/server.crt" 2>/dev/null || tb_die "openssl: serving certificate"
  # An admin client certificate (group system:masters) and the ServiceAccount signing key.
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$d/admin.key" \
    -out "$d/admin.csr" -subj "/O=system:masters/CN=ferry-testbed-admin" 2>/dev/null || tb_die "openssl: admin key"
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=clientAuth" >"$d/client.ext"
  openssl x509 -req -in "$d/admin.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
    -days 825 -extfile "$d/client.ext" -out "$d/admin.crt" 2>/dev/null || tb_die "openssl: admin certificate"
  openssl genrsa -out "$d/sa.key" 2048 2>/dev/null || tb_die "openssl: service account key"
  openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null || tb_die "openssl: service account public key"
  chmod 600 "$d"/*.key
}

write_kubeconfig() {
  local b64='base64 -w0'
  cat >"$state/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: ferry-testbed
  cluster:
    server: https://$TB_HOST:$1
    certificate-authority-data: $($b64 <"$state/pki/ca.crt")
users:
- name: admin
  user:
    client-certificate-data: $($b64 <"$state/pki/admin.crt")
    client-key-data: $($b64 <"$state/pki/admin.key")
contexts:
- name: ferry-testbed
  context: {cluster: ferry-testbed, user: admin}
current-context: ferry-testbed
EOF
  chmod 600 "$state/kubeconfig"
}

start_etcd() {
  local p=$1 peer
  peer=$(tb_free_port)
  ETCD_PID=$(tb_spawn "$state/etcd.log" env -i PATH="$PATH" HOME="$state" "$K8S_BIN/etcd" \
    --name ferry-testbed --data-dir "$state/etcd" \
    --listen-client-urls "http://$TB_HOST:$p" --advertise-client-urls "http://$TB_HOST:$p" \
    --listen-peer-urls "http://$TB_HOST:$peer" --initial-advertise-peer-urls "http://$TB_HOST:$peer" \
    --initial-cluster "ferry-testbed=http://$TB_HOST:$peer" \
    --listen-metrics-urls "http://$TB_HOST:$(tb_free_port)" \
    --unsafe-no-fsync --log-level=warn)
  tb_wait "$ETCD_PID" "$state/etcd.log" curl -fsS --max-time 1 "http://$TB_HOST:$p/health"
}

start_apiserver() {
  local p=$1 e=$2 d=$state/pki
  APISERVER_PID=$(tb_spawn "$state/kube-apiserver.log" env -i PATH="$PATH" HOME="$state" \
    "$K8S_BIN/kube-apiserver" \
    --etcd-servers="http://$TB_HOST:$e" --bind-address=$TB_HOST --advertise-address=$TB_HOST \
    --secure-port="$p" --cert-dir="$state/apiserver-certs" \
    --tls-cert-file="$d/server.crt" --tls-private-key-file="$d/server.key" --client-ca-file="$d/ca.crt" \
    --service-cluster-ip-range=10.0.0.0/24 --service-account-issuer="https://$TB_HOST:$p" \
    --service-account-key-file="$d/sa.pub" --service-account-signing-key-file="$d/sa.key" \
    --authorization-mode=RBAC --allow-privileged=true --endpoint-reconciler-type=none \
    --profiling=false --v=0)
  TESTBED_TIMEOUT=${TESTBED_CLUSTER_TIMEOUT:-120} tb_wait "$APISERVER_PID" "$state/kube-apiserver.log" ready "$p"
}

start_kcm() {
  local kp
  kp=$(tb_free_port)
  KCM_PID=$(tb_spawn "$state/kube-controller-manager.log" env -i PATH="$PATH" HOME="$state" \
    "$K8S_BIN/kube-controller-manager" \
    --kubeconfig="$state/kubeconfig" --authentication-kubeconfig="$state/kubeconfig" \
    --authorization-kubeconfig="$state/kubeconfig" \
    --bind-address=$TB_HOST --secure-port="$kp" --leader-elect=false \
    --service-account-private-key-file="$state/pki/sa.key" --root-ca-file="$state/pki/ca.crt" \
    --cert-dir="$state/kcm-certs" --use-service-account-credentials=false --controllers='*' \
    --profiling=false --v=0)
  # /healthz is always allowed (no credentials needed) once its controllers run.
  tb_wait "$KCM_PID" "$state/kube-controller-manager.log" \
    curl -fsS --max-time 2 -k "https://$TB_HOST:$kp/healthz"
}

install_source_crds() {
  "$K8S_BIN/kubectl" --kubeconfig "$state/kubeconfig" apply --server-side -f "$CRD_DIR/source/" \
    >"$state/crds.log" 2>&1 || { cat "$state/crds.log" >&2; tb_die "could not install the source.toolkit.fluxcd.io CRDs"; }
  "$K8S_BIN/kubectl" --kubeconfig "$state/kubeconfig" wait --for condition=established --timeout=60s \
    -f "$CRD_DIR/source/" >>"$state/crds.log" 2>&1 || tb_die "source CRDs not established (see $state/crds.log)"
}

start() {
  tb_need curl openssl python3 setsid base64 flock
  local bin
  for bin in "$K8S_BIN/etcd" "$K8S_BIN/kube-apiserver" "$K8S_BIN/kube-controller-manager" \
    "$K8S_BIN/kubectl" "$FLUX_BIN/flux" "$CRD_DIR/.complete"; do
    [ -e "$bin" ] || tb_die "$bin is missing; run: bash testbed/cluster.sh build"
  done
  mkdir -p "$TESTBED_DIR"
  exec 8>"$TESTBED_DIR/.$name.lock"
  flock 8 || tb_die "could not lock $TESTBED_DIR/.$name.lock"
  if running; then
    tb_say "$name already running"
    grep '^export' "$envfile"
    return 0
  fi
  check_stale
  [ -z "$port" ] || need_port "$port" --port
  [ -z "$etcd_port" ] || need_port "$etcd_port" --etcd-port
  rm -rf "$state"
  mkdir -p "$state"
  local t0 p e
  t0=$(tb_ms)
  make_pki
  e=${etcd_port:-$(tb_free_port)}
  start_etcd "$e" || { tb_stop "$ETCD_PID" etcd; tb_die "etcd did not start (log: $state/etcd.log)"; }
  p=${port:-$(tb_free_port)}
  write_kubeconfig "$p"
  if ! start_apiserver "$p" "$e"; then
    tb_stop "$APISERVER_PID" kube-apiserver
    tb_stop "$ETCD_PID" etcd
    tb_die "kube-apiserver did not become ready (log: $state/kube-apiserver.log)"
  fi
  local ready_ms=$(($(tb_ms) - t0))
  if ! start_kcm; then
    tb_stop "$APISERVER_PID" kube-apiserver
    tb_stop "$ETCD_PID" etcd
    tb_die "kube-controller-manager did not start (log: $state/kube-controller-manager.log)"
  fi
  tb_env_write "$envfile" \
    TESTBED_CLUSTER_NAME="$name" \
    TESTBED_CLUSTER_URL="https://$TB_HOST:$p" \
    TESTBED_CLUSTER_PORT="$p" \
    TESTBED_CLUSTER_CA="$state/pki/ca.crt" \
    TESTBED_KUBECONFIG="$state/kubeconfig" \
    TESTBED_KUBECTL="$K8S_BIN/kubectl" \
    TESTBED_FLUX="$FLUX_BIN/flux" \
    TESTBED_K8S_VERSION="$K8S_VERSION" \
    TESTBED_FLUX_VERSION="$FLUX_VERSION" \
    TESTBED_FLUX_CRDS="$CRD_DIR/image" \
    TESTBED_SOURCE_CRDS="$CRD_DIR/source" \
    TESTBED_ETCD_URL="http://$TB_HOST:$e" \
    TESTBED_ETCD_PID="$ETCD_PID" \
    TESTBED_APISERVER_PID="$APISERVER_PID" \
    TESTBED_KCM_PID="$KCM_PID" \
    TESTBED_CLUSTER_READY_MS="$ready_ms" \
    TESTBED_CLUSTER_LOGS="$state"
  install_source_crds
  tb_say "$name up at https://$TB_HOST:$p (Kubernetes $K8S_VERSION): API ready in $ready_ms ms, with CRDs in $(($(tb_ms) - t0)) ms; env: $envfile"
  grep '^export' "$envfile"
}

# Stops kube-apiserver and starts it again on the same port over the same etcd, as a control
# plane upgrade or crash does; clients must reconnect.
restart_apiserver() {
  running || tb_die "$name is not running"
  local p e old
  p=$(tb_env_get "$envfile" TESTBED_CLUSTER_PORT)
  e=$(tb_env_get "$envfile" TESTBED_ETCD_URL)
  e=${e##*:}
  old=$(tb_env_get "$envfile" TESTBED_APISERVER_PID)
  tb_stop "$old" kube-apiserver
  start_apiserver "$p" "$e" || tb_die "kube-apiserver did not come back (log: $state/kube-apiserver.log)"
  sed -i "s/^export TESTBED_APISERVER_PID='$old'\$/export TESTBED_APISERVER_PID='$APISERVER_PID'/" "$envfile"
  tb_say "$name: kube-apiserver restarted (pid $old -> $APISERVER_PID)"
}

status() {
  if running; then
    grep '^export' "$envfile"
    return 0
  fi
  check_stale
  tb_say "$name not running"
  exit 1
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
  build) build "$@" ;;
  start) parse_run_args "$@"; start ;;
  stop) parse_run_args "$@"; stop ;;
  status) parse_run_args "$@"; status ;;
  restart-apiserver) parse_run_args "$@"; restart_apiserver ;;
  *) usage ;;
esac
