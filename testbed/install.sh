#!/usr/bin/env bash
# Installs every Debian 12 package Ferry's tests need (registry and git servers, clients).
# Idempotent: exits at once when everything is present. Package maintainer scripts are kept
# from starting services (docker-registry would bind :5000 on all addresses, sshd :22, lighttpd :80).
set -euo pipefail

packages=(
  docker-registry skopeo jq curl openssl ca-certificates python3 procps
  git openssh-server openssh-client lighttpd lighttpd-mod-openssl apache2-utils gnupg
  chromium chromium-driver
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "install.sh: all ${#packages[@]} packages present"
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install.sh: root or sudo needed to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi

policy=/usr/sbin/policy-rc.d
added_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# added by ferry testbed/install.sh during apt-get install\nexit 101\n' |
    "${sudo[@]}" tee "$policy" >/dev/null
  "${sudo[@]}" chmod 0755 "$policy"
  added_policy=1
fi
cleanup() { if [ "$added_policy" = 1 ]; then "${sudo[@]}" rm -f "$policy"; fi; }
trap cleanup EXIT

echo "install.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
for attempt in 1 2 3; do
  if "${sudo[@]}" apt-get update -qq &&
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    echo "install.sh: done"
    exit 0
  fi
  echo "install.sh: apt-get failed (attempt $attempt of 3)" >&2
  sleep $((attempt * 3))
done
echo "install.sh: could not install: ${missing[*]}" >&2
exit 1
