#!/usr/bin/env bash
# What the cluster tier's TypeScript test (tests/cluster/test_typescript.py) needs besides the
# toolchain (pulumi, sdkgen-nodejs) and the virtualenv: Node.js 20 or later with npm (Debian's
# nodejs and npm when missing), and the packages of examples/typescript-service's lock in npm's
# cache, ${XDG_CACHE_HOME:-~/.cache}/hardened-k8s/npm, which the test's `npm ci` reads first.
# Idempotent and non-interactive; installing Debian packages needs root (or passwordless sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo -n"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
    echo "Node.js $(node --version) is too old: examples/typescript-service needs 20 or later" >&2
    exit 1
fi

cache="${XDG_CACHE_HOME:-$HOME/.cache}/hardened-k8s/npm"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp examples/typescript-service/package.json examples/typescript-service/package-lock.json \
    examples/typescript-service/.npmrc "$work/"
started=$(date +%s)
(cd "$work" && npm ci --cache "$cache" --prefer-offline --ignore-scripts --no-audit --no-fund --loglevel=error)
echo "node $(node --version), npm $(npm --version): examples/typescript-service's packages in $cache" \
    "($(( $(date +%s) - started ))s)"
