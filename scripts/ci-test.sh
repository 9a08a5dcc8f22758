#!/usr/bin/env bash
# The pull-request test job: every test tier, on a machine where this user is root or has
# passwordless sudo (GitHub's hosted runner: user `runner`, `sudo` without a password).
#
# The unit, tools and install tiers run as this user. The image and cluster tiers start dockerd,
# run debootstrap and run a real Kubernetes node (containerd, kubelet, iptables, a bridge),
# which need root: they run through `sudo -n` when this user is not root (with bytecode and
# pytest's cache off, so nothing root-owned is left in the checkout). Under CI=true (the
# default here) a tier that cannot run fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
export CI="${CI:-true}" PIP_DISABLE_PIP_VERSION_CHECK=1
# Tools installed from PyPI (actionlint, hadolint) live in the virtualenv's bin, as in the Makefile.
export PATH="$PWD/venv/bin:$PATH"

as_root=()
if [ "$(id -u)" -ne 0 ]; then
    as_root=(sudo -n --preserve-env=CI,PIP_DISABLE_PIP_VERSION_CHECK,XDG_CACHE_HOME,TOOLCHAIN_DIR)
fi

make venv
echo "== unit tier as $(id -un): mock engine, policy, Containerfile checks, in-process"
venv/bin/python -m pytest -q -m "not image and not cluster and not install and not tools" tests/unit tests/policy

echo "== tools tier as $(id -un): hadolint, actionlint, git, pip, the wheel builds, fresh interpreters, the analyzer, the component package"
venv/bin/python -m pytest -q -m tools tests/unit tests/policy

echo "== install tier as $(id -un): the library's wheel without extras, the policy pack on the rules wheel alone"
venv/bin/python -m pytest -q -m install tests/install

make toolchain
# The toolchain cache of this user, wherever root's home is.
export TOOLCHAIN_DIR="${TOOLCHAIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hardened-k8s/toolchain}"
echo "== image and cluster tiers as root${as_root:+ (sudo -n)}"
# A user's PATH has no sbin directories, where Debian puts dockerd, debootstrap and iptables.
"${as_root[@]}" env "PATH=$PATH:/usr/local/sbin:/usr/sbin:/sbin" PYTHONDONTWRITEBYTECODE=1 \
    venv/bin/python -m pytest -q -p no:cacheprovider -m "image or cluster" tests/image tests/cluster
