#!/usr/bin/env bash
# Ferry's controller side by side with Flux's image-reflector-controller and
# image-automation-controller (opt-in: not run by CI or scripts/test.sh).
#
#   bash testbed/cluster.sh build flux-controllers     # once: Flux's two controllers (Go)
#   bash scripts/compare-flux.sh                       # prints a Markdown report on stdout
#   N_POLL=3 N_HOOK=5 IDLE_SECONDS=60 bash scripts/compare-flux.sh
#
# One run, the same inputs for both sides, one side after the other on a fresh private control
# plane each (`testbed/cluster.sh start --name compare-flux|compare-ferry`):
#   - the registry holds the seed's tags for backend and frontend in one org per side (the same
#     images, so the same digests), plus one repository per case of the conformance corpus
#     (flux-policy/irc-policy-latest.json, $FERRY_CONFORMANCE_DIR) shared by both sides;
#   - the Git server holds the `ferry init` layout in one repository per side;
#   - the cluster gets the seed's objects (as kustomize-controller would apply them, or through
#     Flux's source-controller and kustomize-controller when testbed/flux-source built them) and
#     one ImageRepository + ImagePolicy per conformance case.
# Then, per side: time to everything settled, status.latestRef of every ImagePolicy, the files each
# automation changed, RSS (VmRSS, sampled every second), CPU over an idle window (utime+stime),
# and push-to-commit latency after a new tag, at the seed's interval (1m) and with a
# `reconcile.fluxcd.io/requestedAt` annotation on the ImageRepository right after the push (what
# Flux's notification-controller Receiver does for a registry webhook).
set -euo pipefail
# shellcheck source=cluster-bench-lib.sh
. "$(dirname "$0")/cluster-bench-lib.sh"
N_POLL=${N_POLL:-3}
N_HOOK=${N_HOOK:-5}
KEEP=${KEEP:-0} # 1: keep the work folder (logs, snapshots)
IDLE_SECONDS=${IDLE_SECONDS:-60}
SETTLE_TIMEOUT=${SETTLE_TIMEOUT:-300}
LATENCY_TIMEOUT=${LATENCY_TIMEOUT:-300}
CONFORMANCE=${FERRY_CONFORMANCE_DIR:-$root/../shared/conformance}
SEED_TAGS=(develop-v0.0.1-a1b2c3d-1738860000 develop-v0.0.2-b2c3d4e-1738863000
  staging-v0.0.1-a1b2c3d-1738860123 production-v0.0.0-0000000-0 b2c3d4e sha256-b2c3d4e.sig)
NEW_DEVELOP=develop-v0.0.2-b2c3d4e-1738863000
NEW_STAGING=staging-v0.0.1-a1b2c3d-1738860123
# Pauses before each polled push: the push lands at different points of the scan interval.
PHASES=(17 41 5 29 53 11 37)

work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-compare.XXXXXX")
# The work folder (logs, snapshots) is kept when the run fails.
ok=0
trap 'cb_cleanup; if [ "$ok" = 1 ] && [ "$KEEP" = 0 ]; then rm -rf "$work"; else echo "kept $work" >&2; fi' EXIT
run=$(date +%s)
[ -f "$CONFORMANCE/flux-policy/irc-policy-latest.json" ] ||
  cb_die "conformance corpus not found at $CONFORMANCE (set FERRY_CONFORMANCE_DIR)"
cb_setup
SOURCE_CONTROLLERS=0
[ -x "$CB_SOURCE_BIN/source-controller" ] && [ -x "$CB_SOURCE_BIN/kustomize-controller" ] && SOURCE_CONTROLLERS=1

# ---------------------------------------------------------------------------------------------
# Inputs

# conformance_objects ORG: writes $work/conformance.yaml (one ImageRepository + ImagePolicy per
# case whose tags are valid OCI tags), $work/conformance-tags (REPO TAG lines) and
# $work/conformance-cases.tsv (name, expected, note).
conformance_objects() {
  python3 - "$CONFORMANCE/flux-policy/irc-policy-latest.json" "$REG_HOST/$1" "$work" <<'EOF'
import json, re, sys
src, image_base, out = sys.argv[1:]
tag_re = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
docs, tags, cases = [], [], []
for i, case in enumerate(json.load(open(src))["cases"]):
    name = f"c{i:02d}"
    exp = case["expected"].get("latest") or "error: " + case["expected"].get("error", "?")
    bad = [t for t in case["tags"] if not tag_re.match(t)]
    if bad:
        cases.append((name, case["name"], exp, f"skipped: {bad[0]!r} is not a valid OCI tag"))
        continue
    cases.append((name, case["name"], exp, ""))
    repo = f"{image_base.split('/', 1)[1]}/{name}" if case["tags"] else f"{image_base.split('/', 1)[1]}/empty"
    tags += [f"{repo} {t}" for t in dict.fromkeys(case["tags"])]
    meta = {"name": name, "namespace": "conformance"}
    docs.append({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageRepository", "metadata": meta,
                 "spec": {"image": f"{image_base.split('/', 1)[0]}/{repo}", "interval": "1m0s"}})
    spec = {"imageRepositoryRef": {"name": name}, "policy": case["policy"]}
    if "filterTags" in case:
        spec["filterTags"] = case["filterTags"]
    docs.append({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy", "metadata": meta, "spec": spec})
with open(f"{out}/conformance.yaml", "w") as f:
    f.write("\n---\n".join(json.dumps(d) for d in docs) + "\n")
with open(f"{out}/conformance-tags", "w") as f:
    f.write("".join(t + "\n" for t in tags))
with open(f"{out}/conformance-cases.tsv", "w") as f:
    f.write("".join("\t".join(c) + "\n" for c in cases))
EOF
}

# seed_repo SIDE ORG: `ferry init` layout in the bare repo SIDE.git; prints nothing, sets BARE.
seed_repo() {
  local side=$1 org=$2 tree=$work/$1/tree
  BARE=$(bash "$root/testbed/gitserver.sh" repo "compare-$side-$run")
  "$FERRY" init "$tree" --app backend --app frontend --registry "$REG_HOST/$org" \
    --git-url "$TESTBED_GIT_HTTP_URL/$(basename "$BARE")" --git-secret git-credentials >/dev/null
  format_probe "$org" >"$tree/flux/apps/backend/staging/format-probe.yaml"
  git -C "$tree" init -q -b main
  git -C "$tree" -c user.name=seed -c user.email=seed@example.invalid add -A
  git -C "$tree" -c user.name=seed -c user.email=seed@example.invalid commit -qm "ferry init"
  git -C "$tree" push -q "$BARE" main
}

# format_probe ORG: a file in the staging backend automation's folder, written the way people
# write YAML (4-space indents, flow maps, quotes, a folded scalar, comments), with one setter
# marker. kustomization.yaml does not list it, so nothing applies it; it shows what each
# write-back does to a file's bytes beyond the marked value.
format_probe() {
  cat <<EOF
# Not applied (not in kustomization.yaml): shows what the write-back keeps.
apiVersion:   v1
kind: ConfigMap
metadata: {name: format-probe, labels: {app: backend}}
data:
    image: "$REG_HOST/$1/backend:staging-v0.0.0-0000000-0"   # {"\$imagepolicy": "staging:backend"}
    hosts: [ a.example,  b.example ]
    note: >-
        folded
        text

    'quoted key': yes
EOF
}

# apply_seed SIDE ORG: the seed's objects, as kustomize-controller applies them: every
# kustomization but the bootstrap and bases, `${image_registry}` substituted, infrastructure first.
apply_seed() {
  local tree=$work/$1/tree d
  cb_git_secret flux-system
  if [ "$SOURCE_CONTROLLERS" = 1 ]; then
    # Flux's own path: the GitRepository and the bootstrap Kustomization; kustomize-controller
    # applies the rest from Git.
    sed "s|\${image_registry}|$REG_HOST/$2|g" "$tree/flux/bootstrap/infrastructure/image-automation/git-repository.yaml" | cb_apply
    cb_apply <"$tree/flux/bootstrap/flux-system/gotk-sync.yaml"
    return 0
  fi
  for d in $(find "$tree/flux" -name kustomization.yaml -printf '%h\n' | grep -v -e '/flux-system$' -e '/base$' |
    awk '{ print (index($0, "infrastructure") ? 0 : 1), $0 }' | sort | cut -d' ' -f2-); do
    k kustomize "$d" | sed "s|\${image_registry}|$REG_HOST/$2|g" | cb_apply
  done
}

apply_conformance() {
  cb_namespace conformance
  k apply --server-side -f "$work/conformance.yaml" >"$1/conformance-apply.log" 2>&1 || true
}

# git_has BARE PATH TEXT: the main branch's PATH contains TEXT.
git_has() { git --git-dir "$1" show "main:$2" 2>/dev/null | grep -qF -- "$3"; }

seed_written() {
  git_has "$BARE" flux/apps/backend/staging/deployment.yaml "$NEW_STAGING" &&
    git_has "$BARE" flux/apps/backend/develop/deployment.yaml "$NEW_DEVELOP" &&
    git_has "$BARE" flux/apps/frontend/overlays/staging/kustomization.yaml "$NEW_STAGING" &&
    git_has "$BARE" flux/apps/frontend/overlays/develop/kustomization.yaml "$NEW_DEVELOP"
}

# settled: the seed's four updates are in Git, the seed's objects are Ready, and every
# conformance object has been reconciled (Ready True at its generation, or False: Flux leaves
# observedGeneration at -1 on a failed policy).
settled() {
  seed_written || return 1
  [ -z "$(cb_not_ready | grep -v ' conformance/')" ] || return 1
  local n
  n=$(k get imagepolicies,imagerepositories -n conformance -o jsonpath='{range .items[*]}{.metadata.generation}={.status.observedGeneration}:{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
    awk -F'[=:]' '($3 == "True" && $1 != $2) || ($3 != "True" && $3 != "False")' | wc -l)
  [ "$n" = 0 ]
}

# ---------------------------------------------------------------------------------------------
# Measurements

# latency SIDE ORG MODE K: push staging tag K, time until the commit is in Git (ms, or "timeout").
latency() {
  local side=$1 org=$2 mode=$3 n=$4 tag t0 deadline
  tag=staging-v0.0.$((n + 1))-c0ffee$n-$((1738870000 + n))
  cb_push "$org/backend" "$tag"
  t0=$(cb_ms)
  if [ "$mode" = hook ]; then
    k -n flux-system annotate --overwrite imagerepository/backend "reconcile.fluxcd.io/requestedAt=$t0" >/dev/null
  fi
  deadline=$((t0 + LATENCY_TIMEOUT * 1000))
  while [ "$(cb_ms)" -lt "$deadline" ]; do
    if git_has "$BARE" flux/apps/backend/staging/deployment.yaml ":$tag"; then
      echo $(($(cb_ms) - t0))
      return 0
    fi
    sleep 0.1
  done
  echo timeout
}

# snapshot OUT: policies, repositories and the files the automations changed.
snapshot() {
  local out=$1
  k get imagepolicies -A -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name}{"\t"}{.status.latestRef.tag}{"\t"}{.status.conditions[?(@.type=="Ready")].status}{"\t"}{.status.conditions[?(@.type=="Ready")].reason}{"\n"}{end}' |
    sort >"$out/policies.tsv"
  k get imagerepositories -A -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name}{"\t"}{.status.lastScanResult.tagCount}{"\t"}{.status.lastScanResult.latestTags}{"\t"}{.status.conditions[?(@.type=="Ready")].reason}{"\n"}{end}' |
    sort >"$out/repos.tsv"
  mkdir -p "$out/files"
  local init f
  init=$(git --git-dir "$BARE" rev-list --max-parents=0 main)
  git --git-dir "$BARE" diff --name-only "$init" main >"$out/changed"
  while read -r f; do
    mkdir -p "$out/files/$(dirname "$f")"
    git --git-dir "$BARE" show "main:$f" | sed "s|$ORG|<org>|g" >"$out/files/$f"
  done <"$out/changed"
  git --git-dir "$BARE" diff "$init" main | sed "s|$ORG|<org>|g" >"$out/git.diff"
  git --git-dir "$BARE" log --format='%an|%s' "$init..main" >"$out/commits"
  if [ "$SOURCE_CONTROLLERS" = 1 ]; then
    k get deploy -A -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name}{"\t"}{.spec.template.spec.containers[0].image}{"\n"}{end}' |
      sed "s|$ORG|<org>|g" | sort >"$out/live.tsv"
  fi
}

# side SIDE: the whole run for one side; results under $work/SIDE.
side() {
  local side=$1 out=$work/$1 t0 t_ready pids i lat
  mkdir -p "$out"
  ORG=cmp-$side-$run
  cb_say "$side: registry org $ORG, git repo, control plane"
  for app in backend frontend; do cb_push "$ORG/$app" "${SEED_TAGS[@]}"; done
  seed_repo "$side" "$ORG"
  cb_cluster "compare-$side"
  [ "$SOURCE_CONTROLLERS" = 0 ] || start_source_controllers "$out"
  apply_seed "$side" "$ORG"
  apply_conformance "$out"
  [ "$SOURCE_CONTROLLERS" = 0 ] || wait_applied
  t0=$(cb_ms)
  if [ "$side" = flux ]; then
    cb_start_flux "$out"
    pids=("${FLUX_PIDS[@]}")
  else
    cb_start_ferry "$out"
    pids=("$FERRY_PID")
  fi
  cb_sample_rss "$out/rss" "${pids[@]}"
  local sampler=$SAMPLER_PID
  cb_say "$side: waiting for every object to settle (at most ${SETTLE_TIMEOUT}s)"
  t_ready=timeout
  while [ $(($(cb_ms) - t0)) -lt $((SETTLE_TIMEOUT * 1000)) ]; do
    cb_alive "${pids[@]}" || cb_die "$side controller exited; logs in $out"
    if settled; then t_ready=$(($(cb_ms) - t0)); break; fi
    sleep 0.5
  done
  echo "$t_ready" >"$out/ready_ms"
  [ "$t_ready" != timeout ] || { cb_not_ready >&2; tail -n 30 "$out"/*.log >&2; cb_die "$side did not settle"; }
  snapshot "$out"
  if [ "$SOURCE_CONTROLLERS" = 1 ]; then wait_live "$out"; fi
  cb_say "$side: settled after $t_ready ms; idle window ${IDLE_SECONDS}s"
  echo "$(cb_rss_kb "${pids[@]}")" >"$out/rss_settled"
  cb_idle_cpu "$IDLE_SECONDS" "${pids[@]}" >"$out/idle_cpu"
  echo "$(cb_rss_kb "${pids[@]}")" >"$out/rss_idle"
  for ((i = 0; i < N_POLL; i++)); do
    sleep "${PHASES[i % ${#PHASES[@]}]}" # the push's phase in the interval, not a synchronisation
    lat=$(latency "$side" "$ORG" poll "$i")
    cb_say "$side: polled push $i: $lat ms"
    echo "$lat" >>"$out/lat_poll"
  done
  for ((i = N_POLL; i < N_POLL + N_HOOK; i++)); do
    lat=$(latency "$side" "$ORG" hook "$i")
    cb_say "$side: requestedAt push $i: $lat ms"
    echo "$lat" >>"$out/lat_hook"
  done
  if [ "$side" = ferry ]; then curl -fsS --max-time 5 "http://$FERRY_LISTEN/metrics" >"$out/metrics" || true; fi
  cb_stop_pids "$sampler"
  cb_stop_pids "${pids[@]}" "${SOURCE_PIDS[@]}"
  cb_cluster_stop "compare-$side"
}

# ---------------------------------------------------------------------------------------------
# Flux's source-controller and kustomize-controller (when testbed/flux-source built them)

start_source_controllers() {
  local d=$1 port
  k apply --server-side -f "$CB_SOURCE_BIN/crds/" >/dev/null
  k wait --for condition=established --timeout=60s -f "$CB_SOURCE_BIN/crds/" >/dev/null
  port=$(cb_free_port)
  mkdir -p "$d/sc-data"
  KUBECONFIG=$KUBECONFIG_FILE RUNTIME_NAMESPACE=flux-system setsid "$CB_SOURCE_BIN/source-controller" \
    --metrics-addr "127.0.0.1:$(cb_free_port)" --health-addr "127.0.0.1:$(cb_free_port)" \
    --storage-addr "127.0.0.1:$port" --storage-adv-addr "127.0.0.1:$port" --storage-path "$d/sc-data" \
    >"$d/sc.log" 2>&1 </dev/null &
  SOURCE_PIDS=("$!")
  KUBECONFIG=$KUBECONFIG_FILE RUNTIME_NAMESPACE=flux-system setsid "$CB_SOURCE_BIN/kustomize-controller" \
    --metrics-addr "127.0.0.1:$(cb_free_port)" --health-addr "127.0.0.1:$(cb_free_port)" \
    >"$d/kc.log" 2>&1 </dev/null &
  SOURCE_PIDS+=("$!")
  CB_PIDS+=("${SOURCE_PIDS[@]}")
}

# wait_live OUT: kustomize-controller has applied Git's staging tag (bounded).
wait_live() {
  local out=$1 deadline=$(($(cb_ms) + 180000))
  while [ "$(cb_ms)" -lt "$deadline" ]; do
    if k -n staging get deploy backend -o jsonpath='{.spec.template.spec.containers[0].image}' 2>/dev/null |
      grep -qF "$NEW_STAGING"; then
      snapshot "$out"
      return 0
    fi
    sleep 1
  done
  echo "kustomize-controller did not apply $NEW_STAGING within 180 s" >"$out/live-timeout"
}

# wait_applied: kustomize-controller has applied the seed's six ImagePolicies (bounded), so both
# sides' clocks start with the same objects in the cluster.
wait_applied() {
  local deadline=$(($(cb_ms) + 180000))
  while [ "$(cb_ms)" -lt "$deadline" ]; do
    [ "$(k get imagepolicies -A --no-headers 2>/dev/null | grep -vc '^conformance ')" -ge 6 ] && return 0
    sleep 1
  done
  tail -n 20 "$work"/*/sc.log "$work"/*/kc.log >&2 || true
  cb_die "kustomize-controller did not apply the seed within 180 s"
}

SOURCE_PIDS=()

# ---------------------------------------------------------------------------------------------
# Run

cb_say "conformance repositories"
conformance_objects "cmp-conf-$run"
xargs -P 4 -L 1 python3 "$root/testbed/ocipush.py" image "$REG_URL" <"$work/conformance-tags" >/dev/null
side flux
side ferry
python3 "$root/scripts/compare-flux-report.py" "$work" "$SOURCE_CONTROLLERS" "$IDLE_SECONDS"
ok=1
