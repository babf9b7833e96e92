#!/usr/bin/env bash
# Benchmark (issue 3 §5): `ferry setters apply` on a generated tree of 10,000 YAML files, 1,000 of
# them marked, against `grep -rl '"$imagepolicy"'` on the same tree, in the same run; peak RSS of
# the setters run (/usr/bin/time -v). Every timed apply changes all 1,000 marked files (the value
# alternates between two tags).
#
#   bash scripts/bench-setters.sh               # N=5 rounds, release build in $CARGO_TARGET_DIR
#
# Goal: setters/grep <= 3.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
N=${N:-5}
FILES=${FILES:-10000}
MARKED=${MARKED:-1000}
target=${CARGO_TARGET_DIR:-$root/target}
command -v /usr/bin/time >/dev/null 2>&1 || { apt-get install -y -qq time >/dev/null || sudo apt-get install -y -qq time >/dev/null; }
cargo build --quiet --release --bin ferry
ferry="$target/release/ferry"
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench-setters.XXXXXX")
trap 'rm -rf "$work"' EXIT

python3 - "$work/tree" "$FILES" "$MARKED" <<'PY'
import os, sys
root, files, marked = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
step = files // marked
for i in range(files):
    d = os.path.join(root, f"apps/app{i % 100:02d}/env{(i // 100) % 10}")
    os.makedirs(d, exist_ok=True)
    m = i % step == 0
    image = "reg.example/org/app:v1.0.0"
    marker = ' # {"$imagepolicy": "ns:app"}' if m else ""
    with open(os.path.join(d, f"deploy{i}.yaml"), "w") as f:
        f.write(f"""# generated file {i}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app{i}
  namespace: ns
spec:
  replicas: 1
  template:
    spec:
      containers:
      - name: app
        image: {image}{marker}
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: app{i}
spec:
  ports:
  - port: 80
""")
PY
marked_found=$(grep -rl '"$imagepolicy"' "$work/tree" | wc -l)
[ "$marked_found" = "$MARKED" ] || { echo "expected $MARKED marked files, found $marked_found"; exit 1; }

now_ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }
: >"$work/f.ms"; : >"$work/g.ms"
printf '%-6s %-10s %-10s %-8s\n' round ferry_ms grep_ms changed
tags=(v2.0.0 v1.0.0)
for i in $(seq 1 "$N"); do
  tag=${tags[$((i % 2))]}
  t0=$(now_ms)
  "$ferry" setters apply --dir "$work/tree" --set "ns:app=reg.example/org/app:$tag" >"$work/apply.out"
  t1=$(now_ms)
  grep -rl '"$imagepolicy"' "$work/tree" >/dev/null
  t2=$(now_ms)
  changed=$(wc -l <"$work/apply.out")
  echo $((t1 - t0)) >>"$work/f.ms"; echo $((t2 - t1)) >>"$work/g.ms"
  printf '%-6s %-10s %-10s %-8s\n' "$i" $((t1 - t0)) $((t2 - t1)) "$changed"
done
fm=$(median <"$work/f.ms"); gm=$(median <"$work/g.ms")
/usr/bin/time -v "$ferry" setters apply --dir "$work/tree" --set "ns:app=reg.example/org/app:v3.0.0" >/dev/null 2>"$work/time.txt"
rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
echo
echo "== results ($FILES files, $MARKED marked, $N rounds, medians)"
echo "ferry setters apply: ${fm} ms (parse + edit + write 1,000 files)"
echo "grep -rl:            ${gm} ms"
awk -v f="$fm" -v g="$gm" 'BEGIN {printf "ratio ferry/grep: %.2f (goal <= 3)\n", f / g}'
awk -v k="$rss_kb" 'BEGIN {printf "peak RSS ferry setters apply: %.1f MB\n", k / 1024}'
