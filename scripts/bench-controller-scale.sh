#!/usr/bin/env bash
# Scale benchmark of `ferry controller` against Flux's image-reflector-controller +
# image-automation-controller, in the same run (opt-in: not run by CI or scripts/test.sh).
#
#   bash testbed/cluster.sh build flux-controllers     # once: Flux's two controllers (Go)
#   bash scripts/bench-controller-scale.sh             # REPOS=100 POLICIES=1000 AUTOMATIONS=300
#   REPOS=10 POLICIES=100 AUTOMATIONS=30 bash scripts/bench-controller-scale.sh   # a quick look
#
# One cluster per side (fresh, one after the other), the same registry repositories (REPOS, five
# tags each), POLICIES ImagePolicies over them (semver, numerical and alphabetical in turn) and
# AUTOMATIONS ImageUpdateAutomations, each with its own folder (apps/aNNN, one setter marker for
# policy pNNN) in one Git repository per side. Measures, per side: controller start to every
# object Ready=True at its generation, start to every folder written in Git, peak RSS (VmRSS
# sampled every second; Flux = both controllers) and steady RSS STEADY_SECONDS after Ready.
set -euo pipefail
# shellcheck source=cluster-bench-lib.sh
. "$(dirname "$0")/cluster-bench-lib.sh"
REPOS=${REPOS:-100}
POLICIES=${POLICIES:-1000}
AUTOMATIONS=${AUTOMATIONS:-300}
TIMEOUT=${TIMEOUT:-900}
STEADY_SECONDS=${STEADY_SECONDS:-30}
SIDES=${SIDES:-flux ferry} # the report needs both
KEEP=${KEEP:-0}            # 1: keep the work folder (logs, RSS samples)
[ "$AUTOMATIONS" -le "$POLICIES" ] || cb_die "AUTOMATIONS must not exceed POLICIES"
[ "$POLICIES" -ge "$REPOS" ] || cb_die "POLICIES must be at least REPOS"

work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench-scale.XXXXXX")
# The work folder (logs, snapshots) is kept when the run fails.
ok=0
trap 'cb_cleanup; if [ "$ok" = 1 ] && [ "$KEEP" = 0 ]; then rm -rf "$work"; else echo "kept $work" >&2; fi' EXIT
run=$(date +%s)
org=scale-$run
cb_setup

cb_say "registry: $REPOS repositories with 5 tags each"
for ((r = 0; r < REPOS; r++)); do printf '%s/r%03d\n' "$org" "$r"; done >"$work/repos"
xargs -P 4 -I{} python3 "$root/testbed/ocipush.py" image "$REG_URL" {} v0.9.0 --content "{} v0.9.0" <"$work/repos" >/dev/null
xargs -P 4 -I{} python3 "$root/testbed/ocipush.py" tags "$REG_URL" {} v0.9.0 4 --prefix v1.0. <"$work/repos" >/dev/null

# objects GIT_URL: the objects (JSON documents) on stdout.
objects() {
  python3 - "$REG_HOST/$org" "$1" "$REPOS" "$POLICIES" "$AUTOMATIONS" <<'EOF'
import json, sys
image, url, repos, policies, automations = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
docs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "scale"}},
        {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
         "metadata": {"name": "scale", "namespace": "scale"},
         "spec": {"interval": "10m0s", "url": url, "ref": {"branch": "main"},
                  "secretRef": {"name": "git-credentials"}}}]
for r in range(repos):
    docs.append({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageRepository",
                 "metadata": {"name": f"r{r:03d}", "namespace": "scale"},
                 "spec": {"image": f"{image}/r{r:03d}", "interval": "10m0s"}})
choices = [{"semver": {"range": ">=1.0.0"}}, {"semver": {"range": "~1.0"}},
           {"alphabetical": {"order": "asc"}}, {"numerical": {"order": "asc"}}]
for p in range(policies):
    spec = {"imageRepositoryRef": {"name": f"r{p % repos:03d}"}, "policy": choices[p % 4]}
    if p % 4 == 3:
        spec["filterTags"] = {"pattern": r"^v1\.0\.(?P<n>[0-9]+)$", "extract": "$n"}
    docs.append({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy",
                 "metadata": {"name": f"p{p:04d}", "namespace": "scale"}, "spec": spec})
for a in range(automations):
    docs.append({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageUpdateAutomation",
                 "metadata": {"name": f"a{a:03d}", "namespace": "scale"},
                 "spec": {"interval": "10m0s", "sourceRef": {"kind": "GitRepository", "name": "scale"},
                          "git": {"checkout": {"ref": {"branch": "main"}},
                                  "commit": {"author": {"name": "bench", "email": "bench@example.invalid"}},
                                  "push": {"branch": "main"}},
                          "update": {"path": f"./apps/a{a:03d}", "strategy": "Setters"}}})
print("\n---\n".join(json.dumps(d) for d in docs))
EOF
}

# repo SIDE: one bare repo with apps/aNNN/deploy.yaml, each marked for policy pNNN; sets BARE.
repo() {
  local tree=$work/$1/tree a
  BARE=$(bash "$root/testbed/gitserver.sh" repo "scale-$1-$run")
  for ((a = 0; a < AUTOMATIONS; a++)); do
    mkdir -p "$tree/apps/a$(printf %03d "$a")"
    cat >"$tree/apps/a$(printf %03d "$a")/deploy.yaml" <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: a$(printf %03d "$a")
spec:
  template:
    spec:
      containers:
        - name: app
          image: $REG_HOST/$org/r$(printf %03d $((a % REPOS))):v0.9.0 # {"\$imagepolicy": "scale:p$(printf %04d "$a")"}
EOF
  done
  git -C "$tree" init -q -b main
  git -C "$tree" add -A
  git -C "$tree" -c user.name=seed -c user.email=seed@example.invalid commit -qm init
  git -C "$tree" push -q "$BARE" main
}

# written: how many apps/aNNN folders main has changed since the first commit.
written() {
  local init
  init=$(git --git-dir "$BARE" rev-list --max-parents=0 main)
  git --git-dir "$BARE" diff --name-only "$init" main | grep -c '^apps/' || true
}

# ready_count: objects whose READY column says True. The server's table output, not the objects:
# 300 automation statuses with 1,000 observedPolicies each are ~30 MB of JSON, and listing them
# every second would load the API server more than the controllers do. Every object is new
# (generation 1), so Ready=True is Ready at its generation.
ready_count() {
  k get imagerepositories,imagepolicies,imageupdateautomations -n scale --no-headers |
    awk '{ for (i = 2; i <= NF; i++) if ($i == "True") { n++; break } } END { print n + 0 }'
}

# side SIDE: results under $work/SIDE.
side() {
  local side=$1 out=$work/$1 t0 now total ready written_ms=timeout ready_ms=timeout n pids
  mkdir -p "$out"
  repo "$side"
  cb_cluster "scale-$side"
  cb_git_secret scale
  objects "$TESTBED_GIT_HTTP_URL/$(basename "$BARE")" >"$out/objects.yaml"
  k apply --server-side -f "$out/objects.yaml" >/dev/null
  total=$((REPOS + POLICIES + AUTOMATIONS))
  cb_say "$side: $REPOS repositories, $POLICIES policies, $AUTOMATIONS automations applied; starting the controller"
  t0=$(cb_ms)
  if [ "$side" = flux ]; then
    cb_start_flux "$out"
    pids=("${FLUX_PIDS[@]}")
  else
    cb_start_ferry "$out"
    pids=("$FERRY_PID")
  fi
  cb_sample_rss "$out/rss" "${pids[@]}"
  local sampler=$SAMPLER_PID last=0
  while now=$(cb_ms) && [ $((now - t0)) -lt $((TIMEOUT * 1000)) ]; do
    cb_alive "${pids[@]}" || cb_die "$side controller exited; logs in $out"
    if [ "$written_ms" = timeout ] && [ "$(written)" -ge "$AUTOMATIONS" ]; then written_ms=$((now - t0)); fi
    ready=$(ready_count)
    if [ "$ready_ms" = timeout ] && [ "$ready" -ge "$total" ]; then ready_ms=$(($(cb_ms) - t0)); fi
    if [ "$ready_ms" != timeout ] && [ "$written_ms" != timeout ]; then break; fi
    if [ $((now - last)) -ge 30000 ]; then
      cb_say "$side: $((( now - t0) / 1000)) s: $ready/$total Ready, $(written)/$AUTOMATIONS folders written"
      last=$now
    fi
    sleep 1
  done
  n=$(written)
  echo "$ready_ms $written_ms $(ready_count) $n" >"$out/result"
  cb_say "$side: Ready after $ready_ms ms, Git written after $written_ms ms; steady window ${STEADY_SECONDS}s"
  sleep "$STEADY_SECONDS" # a measurement window, not a synchronisation
  cb_rss_kb "${pids[@]}" >"$out/rss_steady"
  git --git-dir "$BARE" rev-list --count main >"$out/commits"
  cb_stop_pids "$sampler"
  cb_stop_pids "${pids[@]}"
  cb_cluster_stop "scale-$side"
}

for s in $SIDES; do side "$s"; done

report() {
  local s ready written ready_n written_n peak steady
  echo "## Scale: $POLICIES ImagePolicies, $AUTOMATIONS automations"
  echo
  echo "\`bash scripts/bench-controller-scale.sh\`, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores," \
    "$(awk '/MemTotal/ { printf "%d GiB", $2 / 1048576 }' /proc/meminfo) (shared with other builds);" \
    "$REPOS ImageRepositories (5 tags each), $POLICIES ImagePolicies, $AUTOMATIONS ImageUpdateAutomations" \
    "(one folder each in one Git repository, over http with Basic auth). Flux = image-reflector-controller" \
    "v1.2.3 + image-automation-controller v1.2.4 (default --concurrent 4)."
  echo
  echo "| measure | Ferry | Flux | Ferry / Flux |"
  echo "|---|---|---|---|"
  declare -A R
  for s in ferry flux; do
    read -r ready written ready_n written_n <"$work/$s/result"
    R[$s.ready]=$ready R[$s.written]=$written R[$s.ready_n]=$ready_n R[$s.written_n]=$written_n
    peak=$(awk '{ if ($2 > m) m = $2 } END { print m + 0 }' "$work/$s/rss")
    R[$s.peak]=$peak R[$s.steady]=$(cat "$work/$s/rss_steady") R[$s.commits]=$(cat "$work/$s/commits")
  done
  sec() { case $1 in timeout) echo "> $TIMEOUT s" ;; *) awk -v m="$1" 'BEGIN { printf "%.1f s", m / 1000 }' ;; esac; }
  rat() { case "$1$2" in *timeout*) echo "–" ;; *) awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }' ;; esac; }
  echo "| start to all $((REPOS + POLICIES + AUTOMATIONS)) objects Ready | $(sec "${R[ferry.ready]}") (${R[ferry.ready_n]} Ready) | $(sec "${R[flux.ready]}") (${R[flux.ready_n]} Ready) | $(rat "${R[ferry.ready]}" "${R[flux.ready]}") |"
  echo "| start to all $AUTOMATIONS folders written in Git | $(sec "${R[ferry.written]}") (${R[ferry.written_n]}) | $(sec "${R[flux.written]}") (${R[flux.written_n]}) | $(rat "${R[ferry.written]}" "${R[flux.written]}") |"
  echo "| commits on main (including the initial one) | ${R[ferry.commits]} | ${R[flux.commits]} | |"
  echo "| peak RSS (1 s samples) | $(cb_mib "${R[ferry.peak]}") MiB | $(cb_mib "${R[flux.peak]}") MiB | $(rat "${R[ferry.peak]}" "${R[flux.peak]}") |"
  echo "| steady RSS, ${STEADY_SECONDS} s after Ready | $(cb_mib "${R[ferry.steady]}") MiB | $(cb_mib "${R[flux.steady]}") MiB | $(rat "${R[ferry.steady]}" "${R[flux.steady]}") |"
}
if [ "$SIDES" = "flux ferry" ]; then report; fi
ok=1
