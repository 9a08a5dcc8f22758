#!/usr/bin/env bash
# Install what the cluster tier's real node needs on top of the image tier (pytest -m cluster,
# make cluster, make up): Debian's containerd and runc (the container runtime, run as a
# process with its own config), the CNI plugins (bridge, host-local, loopback, portmap),
# catatonit (the sandbox image's /pause), conntrack (kube-proxy's iptables mode), ipset and
# iptables (kube-router), iproute2 (the bridge and the tests' network namespaces) and the
# PostgreSQL client (psql reads the data back); then Node.js, npm and the npm packages of the
# TypeScript example (scripts/ci-typescript-deps.sh). Idempotent and non-interactive; needs root
# (or passwordless sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ci-image-deps.sh

packages=(containerd runc containernetworking-plugins catatonit conntrack ipset iptables iproute2 postgresql-client)

missing=()
for pkg in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo -n"
fi

if [ "${#missing[@]}" -eq 0 ]; then
    echo "real node dependencies already installed: ${packages[*]}"
else
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    echo "installed: ${missing[*]}"
fi

bash scripts/ci-typescript-deps.sh
