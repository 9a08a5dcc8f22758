#!/usr/bin/env bash
# Install the Debian packages the real-build image tier (pytest -m image) and
# bench/images.py need: the Docker engine, a registry, skopeo and debootstrap.
# Idempotent and non-interactive; needs root (or passwordless sudo).
set -euo pipefail

# debootstrap needs its recommended debian-archive-keyring to verify the archive.
packages=(docker.io docker-registry skopeo debootstrap debian-archive-keyring)

missing=()
for pkg in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "image tier dependencies already installed: ${packages[*]}"
    exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo -n"
fi

export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${missing[@]}" >/dev/null
echo "installed: ${missing[*]}"
