#!/usr/bin/env bash
# Install what the end-to-end tier (pytest -m e2e, make e2e) needs on top of the image tier:
# Debian's podman (runs the rendered Kubernetes YAML with `podman kube play`), catatonit (the
# infra container's init), iproute2 (the test's own network namespace) and the PostgreSQL
# client (psql reads the data back). Also writes podman's default ulimits within this host's
# hard limits, since raising RLIMIT_NOFILE/RLIMIT_NPROC to podman's defaults is refused on
# some machines. Idempotent and non-interactive; needs root (or passwordless sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ci-image-deps.sh

packages=(podman catatonit iproute2 postgresql-client)

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
    echo "e2e tier dependencies already installed: ${packages[*]}"
else
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    echo "installed: ${missing[*]}"
fi

# podman's default ulimits (nofile 1048576, nproc 4194304) exceed the hard limits of some
# hosts and containers fail to start; pin them to values within the current hard limits.
conf=/etc/containers/containers.conf
nofile=$(ulimit -Hn)
nproc=$(ulimit -Hu)
[ "$nofile" = unlimited ] && nofile=1048576
[ "$nproc" = unlimited ] && nproc=4194304
[ "$nofile" -gt 20000 ] && nofile=20000
[ "$nproc" -gt 4096 ] && nproc=4096
if ! grep -qs '^default_ulimits' "$conf"; then
    $sudo mkdir -p "$(dirname "$conf")"
    if grep -qs '^\[containers\]' "$conf"; then
        $sudo sed -i "/^\[containers\]/a default_ulimits = [\"nofile=${nofile}:${nofile}\", \"nproc=${nproc}:${nproc}\"]" "$conf"
    else
        printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n' \
            "$nofile" "$nofile" "$nproc" "$nproc" | $sudo tee -a "$conf" >/dev/null
    fi
    echo "podman default_ulimits set in $conf: nofile=$nofile nproc=$nproc"
fi
