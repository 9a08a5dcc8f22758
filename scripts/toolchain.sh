#!/usr/bin/env bash
# Build the tools the cluster tier runs, from published Go modules at pinned versions:
#   pulumi                       github.com/pulumi/pulumi/pkg/v3            (cmd/pulumi)
#   pulumi-resource-kubernetes   github.com/pulumi/pulumi-kubernetes/provider/v4
#   pulumi-language-yaml         github.com/pulumi/pulumi-yaml                (YAML programs)
#   sdkgen-nodejs                scripts/sdkgen-nodejs on github.com/pulumi/pulumi/pkg/v3 (TypeScript SDKs)
#   kube-apiserver, kube-controller-manager, kube-scheduler   k8s.io/kubernetes
#   kubelet, kube-proxy                                      k8s.io/kubernetes (the real node)
#   kwok                         sigs.k8s.io/kwok                            (fake nodes)
#   coredns                      github.com/coredns/coredns                  (cluster DNS)
#   kube-router                  github.com/cloudnativelabs/kube-router/v2   (NetworkPolicy)
#   traefik                      github.com/traefik/traefik/v3               (Ingress)
#   metrics-server               sigs.k8s.io/metrics-server                  (metrics API, HPA)
# and install Debian's etcd-server. Idempotent: each binary is built once per version into
# ${XDG_CACHE_HOME:-~/.cache}/hardened-k8s/toolchain/bin (override with TOOLCHAIN_DIR); with a
# warm cache this takes seconds. Prints the bin directory on the last line.
#
# Each module is copied out of the Go module cache and built as the main module with its own
# go.sum. Modules whose go.mod replaces a sibling module with a relative path (pulumi's pkg ->
# ../sdk, pulumi-kubernetes' provider -> ../sdk, kubernetes' staging modules) get the published
# version of that sibling instead, at the version the go.mod requires (kubernetes: the staging
# modules' v0.<minor>.<patch> release).
#
# Versions: the Go module proxy reachable here serves only some versions of these modules, so
# the pins below are the newest that it serves and that match the Python SDK pins as closely as
# possible; docs/toolchain.md lists the differences.
set -euo pipefail

PULUMI_VERSION="${PULUMI_VERSION:-v3.259.0}"
# pulumi-kubernetes has no tags for its provider module; a pseudo-version names the commit.
K8S_PROVIDER_VERSION="${K8S_PROVIDER_VERSION:-v4.0.0-20260115033456-f47bc2d6f199}"
KUBERNETES_VERSION="${KUBERNETES_VERSION:-v1.31.4}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
# The newest pulumi-yaml release the proxy serves whose engine (pulumi v3.257.0) is not newer
# than PULUMI_VERSION; the proxy answers 403 for many other releases.
YAML_VERSION="${YAML_VERSION:-v1.38.3}"
# The real node's add-ons. kube-router v2.1.0 is the only release the proxy serves; it runs
# only in the local test cluster (security advisories exist for it), never in anything shipped.
COREDNS_VERSION="${COREDNS_VERSION:-v1.14.3}"
KUBE_ROUTER_VERSION="${KUBE_ROUTER_VERSION:-v2.1.0}"
# v3.7 replaces a module with a relative path the proxy cannot serve; v3.6.12's replaces are
# published forks.
TRAEFIK_VERSION="${TRAEFIK_VERSION:-v3.6.12}"
# The resource metrics API the HorizontalPodAutoscaler reads (v0.9.0 is served but not an
# approved release here).
METRICS_SERVER_VERSION="${METRICS_SERVER_VERSION:-v0.8.0}"

CACHE="${TOOLCHAIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hardened-k8s/toolchain}"
BIN="$CACHE/bin"
SRC="$CACHE/src"
mkdir -p "$BIN" "$SRC"
# One build at a time per cache: a second caller waits, then finds the binaries built.
exec 9>"$CACHE/.lock"
flock 9

export GOTOOLCHAIN=local GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=0
# The checksum database has no record of the provider's untagged commit; its hash is still
# checked against the module's go.sum entry written by the first download.
export GONOSUMDB="${GONOSUMDB:+$GONOSUMDB,}github.com/pulumi/pulumi-kubernetes/provider"
# Those modules and the Kubernetes staging releases are not in the checksum database: each is
# checked against the h1: hash committed in scripts/toolchain.sum before anything is built.
GONOSUMDB="$GONOSUMDB,k8s.io" python3 "$(dirname "$0")/toolchain_verify.py" "$(dirname "$0")/toolchain.sum" \
    "github.com/pulumi/pulumi-kubernetes/provider/v4@$K8S_PROVIDER_VERSION" "k8s.io/kubernetes@$KUBERNETES_VERSION" \
    "sigs.k8s.io/metrics-server@$METRICS_SERVER_VERSION" >&2

log() { printf '[toolchain %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# copy_module MODULE VERSION -> prints a writable copy of the module's source tree
copy_module() {
    local module="$1" version="$2" dir dest
    dest="$SRC/$(echo "$module" | tr '/' '_')@$version"
    if [ ! -f "$dest/.complete" ]; then
        dir=$(go mod download -json "$module@$version" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("Dir") or sys.exit(d.get("Error")))')
        rm -rf "$dest"
        cp -r "$dir" "$dest"
        chmod -R u+w "$dest"
        touch "$dest/.complete"
    fi
    echo "$dest"
}

# built NAME VERSION: true when BIN/NAME was built at VERSION
built() { [ -x "$BIN/$1" ] && [ "$(cat "$BIN/.$1.version" 2>/dev/null)" = "$2" ]; }
mark() { echo "$2" >"$BIN/.$1.version"; }

build_pulumi() {
    built pulumi "$PULUMI_VERSION" && return
    log "building pulumi $PULUMI_VERSION (github.com/pulumi/pulumi/pkg/v3)"
    local src
    src=$(copy_module github.com/pulumi/pulumi/pkg/v3 "$PULUMI_VERSION")
    (
        cd "$src"
        go mod edit -dropreplace github.com/pulumi/pulumi/sdk/v3
        go build -trimpath -o "$BIN/pulumi" \
            -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
            ./cmd/pulumi
    )
    mark pulumi "$PULUMI_VERSION"
}

# The TypeScript SDK generator (scripts/sdkgen-nodejs): built inside the copy of pkg/v3 above,
# so it compiles against the CLI's own code generator and go.sum, and mostly from its build cache.
build_sdkgen_nodejs() {
    local here version src
    here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/sdkgen-nodejs"
    version="$PULUMI_VERSION-$(sha256sum "$here/main.go" | cut -c1-12)"
    built sdkgen-nodejs "$version" && return
    log "building sdkgen-nodejs $version (scripts/sdkgen-nodejs on github.com/pulumi/pulumi/pkg/v3)"
    src=$(copy_module github.com/pulumi/pulumi/pkg/v3 "$PULUMI_VERSION")
    (
        cd "$src"
        go mod edit -dropreplace github.com/pulumi/pulumi/sdk/v3
        mkdir -p cmd/sdkgen-nodejs
        cp "$here/main.go" cmd/sdkgen-nodejs/main.go
        go build -trimpath -o "$BIN/sdkgen-nodejs" -ldflags "-s -w" ./cmd/sdkgen-nodejs
    )
    mark sdkgen-nodejs "$version"
}

build_kubernetes_provider() {
    built pulumi-resource-kubernetes "$K8S_PROVIDER_VERSION" && return
    log "building pulumi-resource-kubernetes $K8S_PROVIDER_VERSION"
    local src version="${K8S_PROVIDER_VERSION#v}"
    src=$(copy_module github.com/pulumi/pulumi-kubernetes/provider/v4 "$K8S_PROVIDER_VERSION")
    (
        cd "$src"
        go mod edit -dropreplace github.com/pulumi/pulumi-kubernetes/sdk/v4
        # The embedded schema is generated from the module's schema.json by its own generate.go.
        (cd cmd/pulumi-resource-kubernetes && VERSION="$version" go run generate.go)
        go build -trimpath -o "$BIN/pulumi-resource-kubernetes" \
            -ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$version" \
            ./cmd/pulumi-resource-kubernetes
    )
    mark pulumi-resource-kubernetes "$K8S_PROVIDER_VERSION"
}

build_yaml_language() {
    built pulumi-language-yaml "$YAML_VERSION" && return
    log "building pulumi-language-yaml $YAML_VERSION (github.com/pulumi/pulumi-yaml)"
    local src
    src=$(copy_module github.com/pulumi/pulumi-yaml "$YAML_VERSION")
    (
        cd "$src"
        go build -trimpath -o "$BIN/pulumi-language-yaml" \
            -ldflags "-s -w -X github.com/pulumi/pulumi-yaml/pkg/version.Version=$YAML_VERSION" \
            ./cmd/pulumi-language-yaml
    )
    mark pulumi-language-yaml "$YAML_VERSION"
}

build_kubernetes() {
    local bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy) all=1 b
    for b in "${bins[@]}"; do built "$b" "$KUBERNETES_VERSION" || all=0; done
    [ "$all" = 1 ] && return
    log "building ${bins[*]} $KUBERNETES_VERSION (k8s.io/kubernetes)"
    local src staging minor
    src=$(copy_module k8s.io/kubernetes "$KUBERNETES_VERSION")
    staging="v0.${KUBERNETES_VERSION#v1.}"
    minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
    (
        cd "$src"
        # k8s.io/kubernetes replaces every staging module with ./staging/src/k8s.io/<name>, which
        # the module zip does not hold: use each one's published release instead.
        go mod edit -json | python3 -c '
import json, sys
for r in json.load(sys.stdin).get("Replace") or []:
    if r["New"]["Path"].startswith("./staging/"):
        print(r["Old"]["Path"])' | while read -r mod; do
            go mod edit -replace "$mod=$mod@$staging"
        done
        # The checksum database lacks some staging releases; modules already in go.sum are
        # still checked against it, only the swapped-in staging modules are taken as served.
        export GONOSUMDB="$GONOSUMDB,k8s.io"
        local ldflags="-s -w"
        for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
            ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
            ldflags+=" -X $pkg.gitTreeState=clean"
        done
        for b in "${bins[@]}"; do
            go build -trimpath -o "$BIN/$b" -ldflags "$ldflags" "./cmd/$b"
            mark "$b" "$KUBERNETES_VERSION"
        done
    )
}

build_kwok() {
    built kwok "$KWOK_VERSION" && return
    log "building kwok $KWOK_VERSION (sigs.k8s.io/kwok)"
    GOBIN="$BIN" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
    mark kwok "$KWOK_VERSION"
}

# go_install NAME MODULE/CMD VERSION: a module without replace directives, built as published.
go_install() {
    local name="$1" pkg="$2" version="$3"
    built "$name" "$version" && return
    log "building $name $version ($pkg)"
    GOBIN="$BIN" go install -trimpath -ldflags "-s -w ${4:-}" "$pkg@$version"
    mark "$name" "$version"
}

build_coredns() {
    go_install coredns github.com/coredns/coredns "$COREDNS_VERSION"
}

build_kube_router() {
    go_install kube-router github.com/cloudnativelabs/kube-router/v2/cmd/kube-router "$KUBE_ROUTER_VERSION" \
        "-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$KUBE_ROUTER_VERSION"
}

# traefik's go.mod replaces three modules with published forks, which `go install mod@version`
# refuses: build it as the main module of its own copy instead.
build_traefik() {
    built traefik "$TRAEFIK_VERSION" && return
    log "building traefik $TRAEFIK_VERSION (github.com/traefik/traefik/v3)"
    local src
    src=$(copy_module github.com/traefik/traefik/v3 "$TRAEFIK_VERSION")
    (
        cd "$src"
        go build -trimpath -o "$BIN/traefik" \
            -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION" \
            ./cmd/traefik
    )
    mark traefik "$TRAEFIK_VERSION"
}

# metrics-server has no replace directives; it is built as the main module of its own copy,
# checked against scripts/toolchain.sum like the modules outside the checksum database, with
# the version its own Makefile stamps (client-go's version package).
build_metrics_server() {
    built metrics-server "$METRICS_SERVER_VERSION" && return
    log "building metrics-server $METRICS_SERVER_VERSION (sigs.k8s.io/metrics-server)"
    local src
    src=$(copy_module sigs.k8s.io/metrics-server "$METRICS_SERVER_VERSION")
    (
        cd "$src"
        go build -trimpath -o "$BIN/metrics-server" \
            -ldflags "-s -w -X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION" \
            ./cmd/metrics-server
    )
    mark metrics-server "$METRICS_SERVER_VERSION"
}

# kwok simulates nothing without stages: take the module's own node and pod stages (node
# initialisation, lease heartbeats, pods becoming ready and being deleted) as its config.
kwok_stages() {
    local dest="$CACHE/kwok-stages/$KWOK_VERSION" src
    [ -f "$dest/.complete" ] && return
    src=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
    rm -rf "$dest" && mkdir -p "$dest"
    cp "$src/kustomize/stage/node/fast/node-initialize.yaml" \
        "$src/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
        "$src"/kustomize/stage/pod/fast/pod-*.yaml "$dest/"
    chmod u+w "$dest"/*.yaml
    touch "$dest/.complete"
}

install_etcd() {
    command -v etcd >/dev/null && return
    log "installing Debian's etcd-server"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo -n"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends etcd-server >/dev/null
    # Debian's package starts a system etcd on the default ports; the cluster runs its own.
    $sudo systemctl disable --now etcd >/dev/null 2>&1 || $sudo service etcd stop >/dev/null 2>&1 || true
}

started=$(date +%s)
install_etcd
build_kwok
kwok_stages
build_kubernetes
build_coredns
build_kube_router
build_traefik
build_metrics_server
build_kubernetes_provider
build_pulumi
build_sdkgen_nodejs
build_yaml_language

log "done in $(( $(date +%s) - started ))s"
"$BIN/pulumi" version | sed 's/^/  pulumi /' >&2
echo "  pulumi-resource-kubernetes $(cat "$BIN/.pulumi-resource-kubernetes.version")" >&2
echo "  pulumi-language-yaml $(cat "$BIN/.pulumi-language-yaml.version")" >&2
echo "  sdkgen-nodejs $(cat "$BIN/.sdkgen-nodejs.version")" >&2
for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do "$BIN/$b" --version 2>&1 | sed 's/^/  /' >&2; done
# First lines only, read to the end (head would close the pipe early: SIGPIPE under pipefail).
"$BIN/kwok" --version 2>&1 | sed -n '1s/^/  /p' >&2
etcd --version 2>&1 | sed -n '1s/^/  /p' >&2
for b in coredns kube-router traefik metrics-server; do echo "  $b $(cat "$BIN/.$b.version")" >&2; done
echo "$BIN"
