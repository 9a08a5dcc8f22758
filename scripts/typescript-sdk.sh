#!/usr/bin/env bash
# Generate the TypeScript SDK of the hardened-k8s component package from the schema its plugin
# serves, build it, and install it into a Node.js project as @pulumi/hardened-k8s:
#
#   bash scripts/typescript-sdk.sh PROJECT_DIR     (after `npm ci` in PROJECT_DIR)
#
# The schema is what `pulumi-resource-hardened-k8s` (installed with the library; the one on PATH,
# else venv/bin's) answers to `pulumi package get-schema`. The SDK is generated, never committed,
# so it cannot drift from the library: `sdkgen-nodejs` (scripts/sdkgen-nodejs, built by
# scripts/toolchain.sh) runs the Node.js code generator of the toolchain's Pulumi, as `pulumi
# package gen-sdk --language nodejs` does with the Node.js language plugin this toolchain lacks.
# The sources go to PROJECT_DIR/sdks/hardened-k8s (where `pulumi package add` puts them), are
# compiled with the project's own TypeScript against its own @pulumi/pulumi, and the compiled
# package (package.json next to bin/*.js, as published SDKs are laid out) is copied to
# PROJECT_DIR/node_modules/@pulumi/hardened-k8s. Run it again after each `npm ci`.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
[ $# -eq 1 ] || { echo "usage: $0 PROJECT_DIR" >&2; exit 2; }
project="$(cd "$1" && pwd)"
toolchain="${TOOLCHAIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hardened-k8s/toolchain}/bin"
plugin="$(command -v pulumi-resource-hardened-k8s || echo "$repo/venv/bin/pulumi-resource-hardened-k8s")"
for tool in "$toolchain/pulumi" "$toolchain/sdkgen-nodejs" "$plugin" "$project/node_modules/.bin/tsc"; do
    [ -x "$tool" ] || { echo "$tool is missing: run scripts/toolchain.sh, make venv and npm ci" >&2; exit 1; }
done

sdk="$project/sdks/hardened-k8s"
rm -rf "$sdk" && mkdir -p "$sdk"
PULUMI_SKIP_UPDATE_CHECK=true "$toolchain/pulumi" package get-schema "$plugin" >"$sdk/schema.json"
"$toolchain/sdkgen-nodejs" "$sdk/schema.json" "$sdk"
"$project/node_modules/.bin/tsc" -p "$sdk"
cp "$sdk/package.json" "$sdk/bin/"

installed="$project/node_modules/@pulumi/hardened-k8s"
rm -rf "$installed"
cp -r "$sdk/bin" "$installed"
echo "$installed: @pulumi/hardened-k8s $(node -p "require('$installed/package.json').version") from $plugin" >&2
