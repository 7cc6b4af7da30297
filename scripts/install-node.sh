#!/usr/bin/env bash
# Build one real Kubernetes node for `scripts/cluster.sh up` with NODE=1 (`make node-tools`):
#   kubelet, kube-proxy, kube-scheduler  k8s.io/kubernetes, in the wrapper module, cache
#                                        directory and lock of the control plane
#                                        (scripts/install-cluster.sh), so both are one release
#   containerd, containerd-shim-runc-v2, ctr   containerd v2 (`go install` from the module proxy)
#   runc                                 the module proxy, with cgo and libseccomp (Debian's
#                                        libseccomp-dev), as upstream builds it
#   CNI plugins                          bridge, host-local, loopback, portmap (one directory)
#   CoreDNS                              the cluster DNS, run as a pod from a local image
#   kube-router                          the NetworkPolicy controller (firewall only): see below
# and the node's local images, as OCI archives for `ctr images import` (no registry is reachable):
#   pause    a static C program (gcc -static), the pod sandbox image
#   probe    busybox (Debian's busybox-static): sh, nc, nslookup, sleep for the tests' probe pods
#   coredns  the CoreDNS binary above
#
# Why kube-router and not kube-network-policies (what kind uses): kube-network-policies queues
# the first packet of each connection to user space with nftables' `queue` expression, and this
# machine's kernel is built without CONFIG_NFT_QUEUE (`nft add rule ... queue` fails with "No
# such file or directory"), so it cannot enforce anything here. kube-router's network policy
# controller uses iptables and ipsets, which this kernel has. Only v2.1.0 of kube-router/v2 is
# served by the module proxy here (later tags answer 403).
#
# Idempotent and cached per pinned version in $TOOLS_CACHE, like every other installer.
source "$(dirname "${BASH_SOURCE[0]}")/install-cluster.sh"

# Versions: CONTAINERD_VERSION, RUNC_VERSION, CNI_PLUGINS_VERSION, COREDNS_VERSION and
# KUBE_ROUTER_VERSION are pinned in scripts/versions.env (sourced by lib.sh).
# Debian packages the node needs at run time (iptables, ipset, conntrack), to build runc
# (gcc, libseccomp-dev, pkg-config) and the images (gcc's static libc, busybox-static, umoci).
NODE_PACKAGES=(iptables ipset conntrack busybox-static umoci gcc libc6-dev libseccomp-dev pkg-config)
CNI_PLUGINS=(main/bridge main/loopback ipam/host-local meta/portmap)
# Bump when the image recipes below change: the images are cached under this key.
IMAGES_REVISION="1"

install_packages() {
    apt_install node "${NODE_PACKAGES[@]}"
}

install_containerd() {
    local version="$CONTAINERD_VERSION" bin
    local ldflags="-s -w -X github.com/containerd/containerd/v2/version.Version=$version"
    for bin in containerd containerd-shim-runc-v2 ctr; do
        go_install "$bin" "github.com/containerd/containerd/v2/cmd/$bin" "$version" "$ldflags"
    done
}

# runc needs cgo for libseccomp (the seccomp profiles Pod Security `restricted` requires).
install_runc() {
    local dest="$TOOLS_CACHE/runc@$RUNC_VERSION"
    [[ -x "$dest/runc" ]] || locked "runc@$RUNC_VERSION" _build_runc
    link_tool runc "$dest/runc"
}

_build_runc() {
    local version="$RUNC_VERSION" dest="$TOOLS_CACHE/runc@$RUNC_VERSION"
    [[ ! -x "$dest/runc" ]] || return 0
    log "building runc $version (cgo, seccomp)"
    rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
    GOBIN="$dest.tmp" CGO_ENABLED=1 nice -n 10 go install -p "$BUILD_JOBS" -trimpath -tags seccomp \
        -ldflags "-s -w -X main.version=${version#v}" "github.com/opencontainers/runc@$version"
    rm -rf "$dest" && mv "$dest.tmp" "$dest"
}

# The CNI plugins containerd runs, all in one directory (containerd's CNI bin_dir).
install_cni_plugins() {
    local dest="$TOOLS_CACHE/cni-plugins@$CNI_PLUGINS_VERSION"
    [[ -x "$dest/portmap" ]] || locked "cni-plugins@$CNI_PLUGINS_VERSION" _build_cni_plugins
    ln -sfn "$dest" "$TOOLS_DIR/cni-bin"
}

_build_cni_plugins() {
    local version="$CNI_PLUGINS_VERSION" dest="$TOOLS_CACHE/cni-plugins@$CNI_PLUGINS_VERSION"
    [[ ! -x "$dest/portmap" ]] || return 0
    log "building CNI plugins $version (${CNI_PLUGINS[*]})"
    rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
    local pkgs=() plugin
    for plugin in "${CNI_PLUGINS[@]}"; do
        pkgs+=("github.com/containernetworking/plugins/plugins/$plugin@$version")
    done
    GOBIN="$dest.tmp" CGO_ENABLED=0 nice -n 10 go install -p "$BUILD_JOBS" -trimpath \
        -ldflags "-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$version" \
        "${pkgs[@]}"
    rm -rf "$dest" && mv "$dest.tmp" "$dest"
}

# CoreDNS with the plugins our Corefile (scripts/node/coredns.yaml) names and no others, the way
# upstream documents custom builds: a main package that imports coremain and those plugins (the
# stock binary imports every plugin through core/plugin, whose cloud SDKs are most of its compile
# time). The list is read from the Corefile, so a directive added there is compiled in.
COREFILE_YAML="$ROOT/scripts/node/coredns.yaml"

# corefile_plugins: the directive of each line of the Corefile's server block, sorted.
corefile_plugins() {
    awk '/Corefile: \|/ {on = 1; next}
         on && /^[^ ]/ {exit}
         on { if ($1 == "}") {depth--; next}
              if (depth == 1) print $1
              if ($NF == "{") depth++ }' "$COREFILE_YAML" | sort -u
}

coredns_dir() {
    echo "$TOOLS_CACHE/coredns@$COREDNS_VERSION+$(corefile_plugins | sha256sum | cut -c1-12)"
}

install_coredns() {
    local dest
    dest="$(coredns_dir)"
    [[ -x "$dest/coredns" ]] || locked "coredns@$COREDNS_VERSION" _build_coredns "$dest"
    link_tool coredns "$dest/coredns"
}

_build_coredns() {
    local dest="$1" module="github.com/coredns/coredns"
    [[ ! -x "$dest/coredns" ]] || return 0
    local src="$TOOLS_CACHE/src/coredns@$COREDNS_VERSION" dir name pkg imports=""
    dir="$(go_mod_dir "$module" "$COREDNS_VERSION")"
    # plugin.cfg maps each directive to its package (a bare name is under plugin/).
    for name in $(corefile_plugins); do
        pkg="$(awk -F: -v n="$name" '$1 == n {print $2}' "$dir/plugin.cfg")"
        [[ -n "$pkg" ]] || { log "error: CoreDNS $COREDNS_VERSION has no plugin '$name'"; return 1; }
        [[ "$pkg" == */* ]] || pkg="$module/plugin/$pkg"
        imports+=$'\t_ "'"$pkg"$'"\n'
    done
    log "building coredns $COREDNS_VERSION with plugins: $(corefile_plugins | tr '\n' ' ')"
    rm -rf "$src" && mkdir -p "$src" "$dest.tmp"
    printf '// Throw-away wrapper generated by scripts/install-node.sh. Do not edit.\nmodule mlp.local/build/coredns\n\ngo 1.26\n\nrequire %s %s\n' \
        "$module" "$COREDNS_VERSION" >"$src/go.mod"
    printf '// Generated by scripts/install-node.sh from the Corefile. Do not edit.\npackage main\n\nimport (\n%s\t"%s/coremain"\n)\n\nfunc main() { coremain.Run() }\n' \
        "$imports" "$module" >"$src/main.go"
    (cd "$src" && GOFLAGS=-mod=mod go mod tidy >&2 && CGO_ENABLED=0 nice -n 10 go build \
        -p "$BUILD_JOBS" -trimpath -ldflags "-s -w" -o "$dest.tmp/coredns" .)
    rm -rf "$dest" && mv "$dest.tmp" "$dest"
}

install_kube_router() {
    go_install kube-router github.com/cloudnativelabs/kube-router/v2/cmd/kube-router \
        "$KUBE_ROUTER_VERSION" "-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$KUBE_ROUTER_VERSION"
}

# The pod sandbox: sleeps until SIGTERM/SIGINT, reaps nothing (pods do not share PID namespaces
# here). Written for this repo; built static so the image holds one file.
PAUSE_C='#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
static void quit(int sig) { (void)sig; _exit(0); }
int main(void) {
    signal(SIGINT, quit);
    signal(SIGTERM, quit);
    for (;;) pause();
}'

# oci_image OUT NAME ROOTFS_DIR [umoci config options...]: an OCI layout archive of ROOTFS_DIR
# whose index names the image NAME:node (what `ctr images import --base-name NAME` expects).
oci_image() {
    local out="$1" name="$2" rootfs="$3"
    shift 3
    local work
    work="$(mktemp -d)"
    umoci init --layout "$work/layout"
    umoci new --image "$work/layout:node"
    umoci unpack --image "$work/layout:node" "$work/bundle" >/dev/null
    cp -a "$rootfs/." "$work/bundle/rootfs/"
    umoci repack --image "$work/layout:node" "$work/bundle"
    umoci config --image "$work/layout:node" --author mlp-node --os linux --architecture amd64 \
        --config.user 65532:65532 --config.workingdir / "$@"
    umoci gc --layout "$work/layout"
    tar -C "$work/layout" -cf "$out.tmp" .
    mv "$out.tmp" "$out"
    rm -rf "$work"
    log "image $name: $(du -h "$out" | cut -f1)"
}

images_key() {
    printf '%s\n' "$IMAGES_REVISION" "$PAUSE_C" "$(coredns_dir)" \
        "$(dpkg-query -W -f '${Version}' busybox-static)" | sha256sum | cut -c1-12
}

install_images() {
    local dest="$TOOLS_CACHE/node-images@$(images_key)"
    [[ -f "$dest/coredns.tar" ]] || locked "node-images" _build_images "$dest"
    ln -sfn "$dest" "$TOOLS_DIR/node-images"
}

_build_images() {
    local dest="$1"
    [[ ! -f "$dest/coredns.tar" ]] || return 0
    rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
    local work
    work="$(mktemp -d)"
    mkdir -p "$work/pause" "$work/probe/bin" "$work/probe/tmp" "$work/coredns"
    printf '%s\n' "$PAUSE_C" >"$work/pause.c"
    gcc -static -Os -s -o "$work/pause/pause" "$work/pause.c"
    oci_image "$dest.tmp/pause.tar" pause "$work/pause" --config.entrypoint /pause

    cp /bin/busybox "$work/probe/bin/busybox"
    local applet
    for applet in sh nc nslookup sleep cat echo ls id hostname printf timeout true; do
        ln -s busybox "$work/probe/bin/$applet"
    done
    chmod 1777 "$work/probe/tmp"
    oci_image "$dest.tmp/probe.tar" probe "$work/probe" --config.env PATH=/bin \
        --config.entrypoint /bin/sh

    cp "$(coredns_dir)/coredns" "$work/coredns/coredns"
    oci_image "$dest.tmp/coredns.tar" coredns "$work/coredns" --config.entrypoint /coredns
    rm -rf "$work" "$dest"
    mv "$dest.tmp" "$dest"
}

# timed NAME COMMAND...: run COMMAND, log how long it took (cold builds vs. warm relinks).
timed() {
    local name="$1" started=$SECONDS
    shift
    "$@"
    log "$name ready ($((SECONDS - started))s)"
}

timed packages install_packages
timed containerd install_containerd
timed runc install_runc
timed cni-plugins install_cni_plugins
timed coredns install_coredns
timed kube-router install_kube_router
timed images install_images
timed "kubelet, kube-proxy, kube-scheduler" install_kubernetes kubelet kube-proxy kube-scheduler
