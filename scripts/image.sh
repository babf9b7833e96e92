#!/usr/bin/env bash
# Builds Ferry's container image as an OCI image layout, without Docker.
#
#   bash scripts/image.sh [--out DIR] [--binary PATH] [--push REGISTRY/REPO:TAG [--insecure]]
#
# Content: the ferry release binary (`cargo build --release --locked -p ferry`, or --binary), and
# from Debian packages only (`apt-get download` at the versions installed on this machine, then
# `dpkg-deb -x`, no maintainer scripts): git with its http/https helpers, ssh (openssh-client),
# /bin/sh (dash) and cat (ssh passphrase helper), the CA bundle, and exactly the shared libraries
# those need (ELF DT_NEEDED closure). No kustomize: Debian has none (pass --kustomize to render).
# User ferry (65532:65532), HOME=/home/ferry. SBOM at /usr/share/ferry/sbom.json and
# DIR/sbom.json. Reproducible: two builds of one commit give the same manifest digest
# (SOURCE_DATE_EPOCH = commit time unless set). --push uploads with `ferry image push`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/target/image binary="" push="" insecure=()
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=${2:?--out DIR}; shift ;;
    --binary) binary=${2:?--binary PATH}; shift ;;
    --push) push=${2:?--push REGISTRY/REPO:TAG}; shift ;;
    --insecure) insecure=(--insecure) ;;
    -h | --help) sed -n '4,14p' "$0" | sed 's/^# *//'; exit 0 ;;
    *) echo "image.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done
say() { echo "image.sh: $*" >&2; }
die() { say "$*"; exit 1; }
for t in apt-get dpkg-deb dpkg-query python3 git; do
  command -v "$t" >/dev/null || die "needs $t"
done

revision=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
# Not exported: build.rs already dates the binary from the commit (or a SOURCE_DATE_EPOCH the
# caller exported), and exporting it here would invalidate cargo's cache for every build script
# that watches it.
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)
source_url=$(sed -n 's/^repository = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)

if [ -z "$binary" ]; then
  say "cargo build --release --locked -p ferry"
  (cd "$root" && cargo build --release --locked -p ferry)
  binary=${CARGO_TARGET_DIR:-$root/target}/release/ferry
fi
[ -x "$binary" ] || die "no ferry binary at $binary"

# Debian packages whose files go in. Their names come from the libraries the binaries link
# against on this machine (dpkg -S); the .debs are apt's candidate versions, and the ELF closure
# is then resolved inside the downloaded packages (a missing library fails the build).
base=(libc6 libgcc-s1 git openssh-client ca-certificates dash coreutils)
libpkgs() {
  { ldd "$binary"; ldd /usr/bin/git; ldd /usr/bin/ssh; for f in /usr/lib/git-core/*; do ldd "$f" || true; done; } 2>/dev/null |
    awk '$3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u |
    while read -r lib; do
      real=$(readlink -f "$lib")
      for p in "$lib" "$real" "${lib#/usr}" "${real#/usr}" "/usr$lib" "/usr$real"; do
        dpkg-query -S "$p" 2>/dev/null | head -1 | cut -d: -f1 && break
      done
    done
}
for p in git openssh-client; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
    die "$p must be installed here (testbed/install.sh) to resolve its libraries"
done
mapfile -t pkgs < <({ printf '%s\n' "${base[@]}"; libpkgs; } | sed 's/:amd64$//' | sort -u)

work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/debs"
say "apt-get download ${#pkgs[@]} packages (apt's candidate versions; listed in the SBOM)"
(cd "$work/debs" && apt-get download -q "${pkgs[@]}" 2>&1 >/dev/null | grep -v "^W: Download is performed unsandboxed" >&2 || true; [ "$(ls | wc -l)" -eq "${#pkgs[@]}" ]) ||
  die "apt-get download failed for: ${pkgs[*]} (run apt-get update?)"

rm -rf "$out"
python3 "$root/scripts/image_build.py" --debs "$work/debs" --binary "$binary" --out "$out" \
  --version "$version" --source "${source_url:-unknown}" --revision "$revision" --epoch "$epoch" --work "$work"
say "layout at $out: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$out/index.json")"
if [ -n "$push" ]; then
  "$binary" image push "${insecure[@]}" "$out" "$push"
fi
