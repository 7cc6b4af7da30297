# One real Kubernetes node for scripts/cluster.sh (NODE=1). Sourced by cluster.sh; not run.
#
# The node lives in a network namespace of its own, `mlp-node-<slot>`, joined to the host by
# one veth pair: the host side (10.200.<slot>.1) is where the control plane listens, the node
# side (10.200.<slot>.2) is the node's IP. containerd, kubelet, kube-proxy and kube-router run
# in that namespace (`nsenter --net`, same mounts as the host), so their bridge, veths,
# iptables chains, ipsets and network sysctls are the namespace's: deleting it on `down`
# removes every one of them, and several nodes (one per test session) never share a chain.
# The namespace has no default route and the host does not forward, so pods have no route off
# the machine; a FORWARD rule also drops pod traffic to anything but the pod range, the
# Service range and the apiserver's address and port.
#
# What is machine-wide is shared through $NODE_RUN (a tmpfs): a slot per running node, and the
# kernel sysctls the kubelet changes (kernel.panic, kernel.panic_on_oops, vm.overcommit_memory)
# as they were before the first node started; the last node to stop restores them and removes
# the paths the kubelet, containerd and CNI write outside the work directory.

NODE_RUN="${MLP_NODE_RUN:-/run/mlp-node}"
NODE_SLOTS=32
# Sysctls recorded before the first node starts and restored after the last one stops.
NODE_SYSCTLS=(kernel.panic kernel.panic_on_oops vm.overcommit_memory vm.panic_on_oom
    kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.ip_forward
    net.bridge.bridge-nf-call-iptables)
# Paths written outside the work directory (hard-coded in kubelet, containerd and libcni).
NODE_OUTSIDE_PATHS=(/var/lib/kubelet /var/log/containers /var/lib/cni /run/containerd)
NODE_BINARIES=(kubelet kube-proxy kube-scheduler containerd containerd-shim-runc-v2 ctr runc kube-router)
# NODE_STORE=<name> keeps the node's containerd image store (content and unpacked layers) in
# $NODE_STORES/<name> between runs, so a later node with that name starts with the images the
# last one had: unpacking an image of gigabytes costs a minute of CPU here, a pull of an image
# already present costs a manifest lookup. One node uses a store at a time (claimed under the
# slot lock; a node that finds it in use gets a fresh store in its work directory). A node hands
# its store back without containers or sandboxes (`node_store_release`), so the next containerd
# starts with images only; a store not handed back so (a killed run) is emptied before reuse.
NODE_STORES="${MLP_NODE_STORES:-${XDG_CACHE_HOME:-$HOME/.cache}/ml-platform-node}"
IMAGE_PREFIX="localhost/mlp-node"
IMAGE_TAG="node"

node_log() { printf 'node: %s\n' "$*" >&2; }

# node_vars SLOT: every per-node name and address, from the slot number.
node_vars() {
    SLOT="$1"
    NODE_NAME="mlp-node-$SLOT"
    NETNS="mlp-node-$SLOT"
    HOST_VETH="mlpn$SLOT"
    HOST_IP="10.200.$SLOT.1"
    NODE_IP="10.200.$SLOT.2"
    POD_CIDR="10.244.$SLOT.0/24"
    SERVICE_CIDR="10.96.$SLOT.0/24"
    SERVICE_IP="10.96.$SLOT.1"
    DNS_IP="10.96.$SLOT.10"
    CGROUP_ROOT="mlp-node-$SLOT"
    NODE_DIR="$CLUSTER_DIR/node"
    SOCK="$NODE_DIR/containerd/containerd.sock"
    CONTAINERD_ROOT="$NODE_DIR/containerd/root"
    if [[ -f "$CLUSTER_DIR/node-store" ]]; then
        CONTAINERD_ROOT="$NODE_STORES/$(cat "$CLUSTER_DIR/node-store")"
    fi
}

node_check_tools() {
    local name
    for name in "${NODE_BINARIES[@]}"; do
        [[ -x "$BIN/$name" ]] || die "$BIN/$name missing: run scripts/install-node.sh (make node-tools)"
    done
    [[ -d "$BIN/../cni-bin" && -f "$BIN/../node-images/pause.tar" ]] \
        || die "CNI plugins or node images missing: run scripts/install-node.sh (make node-tools)"
    [[ "$(id -u)" == 0 ]] || die "a node needs root (network namespaces, cgroups, iptables)"
}

in_netns() { nsenter --net="/run/netns/$NETNS" "$@"; }

# node_claim: a free slot (machine-wide, under a lock); the first node also records the sysctls
# and which outside paths existed before.
node_claim() {
    mkdir -p "$NODE_RUN"
    local slot
    slot="$(
        exec 9>>"$NODE_RUN/lock"
        flock 9
        local s
        for ((s = 0; s < NODE_SLOTS; s++)); do
            if [[ -f "$NODE_RUN/slot-$s" ]]; then
                # A slot whose owner's state directory is gone was left by a killed run.
                [[ -d "$(cat "$NODE_RUN/slot-$s")" ]] && continue
                rm -f "$NODE_RUN/slot-$s"
            fi
            ip netns list | grep -qw "mlp-node-$s" && continue
            if [[ ! -f "$NODE_RUN/sysctls" ]]; then
                local key
                for key in "${NODE_SYSCTLS[@]}"; do
                    printf '%s=%s\n' "$key" "$(sysctl -n "$key")"
                done >"$NODE_RUN/sysctls.tmp"
                mv "$NODE_RUN/sysctls.tmp" "$NODE_RUN/sysctls"
                local path
                for path in "${NODE_OUTSIDE_PATHS[@]}"; do
                    if [[ -e "$path" ]]; then printf '%s\n' "$path"; fi
                done >"$NODE_RUN/existed"
            fi
            printf '%s\n' "$CLUSTER_DIR" >"$NODE_RUN/slot-$s"
            printf '%s\n' "$s"
            exit 0
        done
        exit 1
    )" || die "no free node slot (all $NODE_SLOTS in use, see $NODE_RUN)"
    printf '%s\n' "$slot" >"$CLUSTER_DIR/node-slot"
    node_vars "$slot"
}

# node_store_claim: use the store NODE_STORE names as containerd's root, if no other node has it.
node_store_claim() {
    [[ -n "${NODE_STORE:-}" ]] || return 0
    [[ "$NODE_STORE" =~ ^[a-z0-9][a-z0-9-]*$ ]] || die "NODE_STORE must be a lowercase name, not '$NODE_STORE'"
    mkdir -p "$NODE_STORES"
    if ! (
        exec 9>>"$NODE_RUN/lock"
        flock 9
        owner="$NODE_RUN/store-$NODE_STORE"
        # A store whose owner's state directory is gone was left by a killed run.
        [[ -f "$owner" && -d "$(cat "$owner")" ]] && exit 1
        printf '%s\n' "$CLUSTER_DIR" >"$owner"
    ); then
        node_log "image store $NODE_STORE is in use by another node: this one starts empty"
        return 0
    fi
    local store="$NODE_STORES/$NODE_STORE"
    if [[ -d "$store" && ! -f "$store/.handed-back" ]]; then
        node_log "image store $NODE_STORE was not handed back (a killed run): emptying it"
        rm -rf "$store"
    fi
    mkdir -p "$store"
    rm -f "$store/.handed-back"
    printf '%s\n' "$NODE_STORE" >"$CLUSTER_DIR/node-store"
    CONTAINERD_ROOT="$store"
}

# node_store_release: with containerd still up and every task deleted, remove the containers
# and sandboxes (and their snapshots) from the claimed store, so it holds images only; the
# store is marked handed back once containerd has stopped (node_store_hand_back).
node_store_release() {
    [[ -f "$CLUSTER_DIR/node-store" && -S "$SOCK" ]] || return 0
    pid_alive "$CLUSTER_DIR/pids/containerd" || return 0
    local ctr=("$BIN/ctr" --address "$SOCK" -n k8s.io) id
    for id in $("${ctr[@]}" sandboxes ls -q 2>/dev/null); do
        "${ctr[@]}" sandboxes rm -f "$id" >/dev/null 2>&1 || true
    done
    for id in $("${ctr[@]}" containers ls -q 2>/dev/null); do
        "${ctr[@]}" containers rm "$id" >/dev/null 2>&1 || true
    done
    [[ -z "$("${ctr[@]}" containers ls -q 2>/dev/null)" ]] && : >"$CLUSTER_DIR/node-store-empty"
    return 0
}

node_store_hand_back() {
    [[ -f "$CLUSTER_DIR/node-store" ]] || return 0
    local name store
    name="$(cat "$CLUSTER_DIR/node-store")"
    store="$NODE_STORES/$name"
    if [[ -f "$CLUSTER_DIR/node-store-empty" ]] && ! pid_alive "$CLUSTER_DIR/pids/containerd"; then
        # The CRI plugin's per-container and per-sandbox files, of containers gone.
        rm -rf "$store/io.containerd.grpc.v1.cri"
        : >"$store/.handed-back"
    fi
    (
        flock 9
        rm -f "$NODE_RUN/store-$name"
    ) 9>>"$NODE_RUN/lock"
    rm -f "$CLUSTER_DIR/node-store" "$CLUSTER_DIR/node-store-empty"
}

# node_stores_clean: remove every kept image store no running node holds.
node_stores_clean() {
    [[ -d "$NODE_STORES" ]] || return 0
    mkdir -p "$NODE_RUN"
    (
        flock 9
        local store owner
        for store in "$NODE_STORES"/*/; do
            [[ -d "$store" ]] || continue
            store="${store%/}"
            owner="$NODE_RUN/store-$(basename "$store")"
            if [[ -f "$owner" && -d "$(cat "$owner")" ]]; then
                node_log "image store $(basename "$store") is in use: kept"
                continue
            fi
            rm -rf "$store"
            node_log "removed image store $(basename "$store")"
        done
    ) 9>>"$NODE_RUN/lock"
}

# node_release: free the slot; the last node restores the sysctls and removes outside paths.
node_release() {
    [[ -d "$NODE_RUN" ]] || return 0
    (
        flock 9
        rm -f "$NODE_RUN/slot-$SLOT"
        compgen -G "$NODE_RUN/slot-*" >/dev/null && exit 0
        if [[ -f "$NODE_RUN/sysctls" ]]; then
            local line
            while IFS= read -r line; do
                sysctl -q -w "$line" >/dev/null || node_log "could not restore $line"
            done <"$NODE_RUN/sysctls"
        fi
        local path
        for path in "${NODE_OUTSIDE_PATHS[@]}"; do
            grep -qx "$path" "$NODE_RUN/existed" 2>/dev/null || rm -rf "$path"
        done
        rm -f "$NODE_RUN/sysctls" "$NODE_RUN/existed"
    ) 9>>"$NODE_RUN/lock"
}

node_network_up() {
    ip netns add "$NETNS"
    ip link add "$HOST_VETH" type veth peer name eth0 netns "$NETNS"
    ip addr add "$HOST_IP/24" dev "$HOST_VETH"
    ip link set "$HOST_VETH" up
    in_netns ip link set lo up
    in_netns ip addr add "$NODE_IP/24" dev eth0
    in_netns ip link set eth0 up
    # The host reaches pods and Services through the node (tests, the apiserver's proxy).
    ip route add "$POD_CIDR" via "$NODE_IP" dev "$HOST_VETH"
    ip route add "$SERVICE_CIDR" via "$NODE_IP" dev "$HOST_VETH"
}

# Pods may open connections to pods, Services and the apiserver, nothing else (the namespace
# has no default route either). In mangle FORWARD, which the filter chains of kube-proxy and
# kube-router (whose ACCEPTs end the filter table's FORWARD) cannot pass by, and for new
# connections only, after kube-proxy's DNAT: a Service's backend is a pod or the apiserver.
node_pod_egress_rules() {
    local port="$1"
    in_netns iptables -w -t mangle -N MLP-POD-EGRESS
    in_netns iptables -w -t mangle -A MLP-POD-EGRESS -d "$POD_CIDR" -j RETURN
    in_netns iptables -w -t mangle -A MLP-POD-EGRESS -d "$SERVICE_CIDR" -j RETURN
    in_netns iptables -w -t mangle -A MLP-POD-EGRESS -d "$HOST_IP/32" -p tcp --dport "$port" -j RETURN
    in_netns iptables -w -t mangle -A MLP-POD-EGRESS -j DROP
    in_netns iptables -w -t mangle -A FORWARD -s "$POD_CIDR" -m conntrack --ctstate NEW -j MLP-POD-EGRESS
}

node_cgroups_up() {
    local hierarchy
    for hierarchy in /sys/fs/cgroup/*/; do
        [[ -L "${hierarchy%/}" ]] && continue
        mkdir -p "$hierarchy$CGROUP_ROOT"
        if [[ -f "${hierarchy}cpuset.cpus" ]]; then
            cat "${hierarchy}cpuset.cpus" >"$hierarchy$CGROUP_ROOT/cpuset.cpus"
            cat "${hierarchy}cpuset.mems" >"$hierarchy$CGROUP_ROOT/cpuset.mems"
        fi
    done
}

# node_cgroups_kill: SIGKILL every process in the node's cgroups (containers and sandboxes).
node_cgroups_kill() {
    local dir pid
    for dir in /sys/fs/cgroup/*/"$CGROUP_ROOT"; do
        [[ -d "$dir" ]] || continue
        while read -r pid; do
            [[ -z "$pid" ]] || kill -KILL "$pid" 2>/dev/null || true
        done < <(find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null)
    done
}

# Kill whatever is still in the node's cgroups, then remove them bottom-up.
node_cgroups_down() {
    node_cgroups_kill
    local tries dir
    for ((tries = 0; tries < 50; tries++)); do
        local left=0
        for dir in /sys/fs/cgroup/*/"$CGROUP_ROOT"; do
            [[ -d "$dir" ]] || continue
            find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
            [[ -d "$dir" ]] && left=1
        done
        ((left)) || return 0
        sleep 0.1
    done
    node_log "cgroups of $CGROUP_ROOT still present"
}

node_certs() {
    cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
    cert kubelet-serving "/CN=$NODE_NAME" "IP:$NODE_IP,DNS:$NODE_NAME"
    cert apiserver-kubelet-client "/CN=kube-apiserver-kubelet-client"
    cert kube-proxy "/CN=system:kube-proxy"
    cert kube-scheduler "/CN=system:kube-scheduler"
    cert kube-router "/CN=mlp:kube-router"
    chmod 600 "$CLUSTER_DIR/pki"/*.key
}

write_node_config() {
    local api_port="$1" pki="$CLUSTER_DIR/pki" server="https://$HOST_IP:$1"
    mkdir -p "$NODE_DIR"/{containerd/certs.d,cni/net.d,cni/ipam,kubelet,pod-logs,runc}
    local user
    for user in kubelet kube-proxy kube-scheduler kube-router; do
        write_kubeconfig "$NODE_DIR/$user.kubeconfig" "$user" "$server"
    done
    : >"$NODE_DIR/resolv.conf" # pods with dnsPolicy Default get no host resolver
    # Every path containerd would write or read outside the work directory is moved into it
    # (or switched off: NRI, the debug and metrics sockets, imports from /etc/containerd).
    cat >"$NODE_DIR/containerd/config.toml" <<EOF
version = 4
root = "$CONTAINERD_ROOT"
state = "$NODE_DIR/containerd/state"
imports = []
[plugins.'io.containerd.server.v1.grpc']
  address = "$SOCK"
[plugins.'io.containerd.server.v1.ttrpc']
  address = "$SOCK.ttrpc"
[plugins.'io.containerd.server.v1.debug']
  address = ""
[plugins.'io.containerd.server.v1.metrics']
  address = ""
[plugins.'io.containerd.internal.v1.opt']
  path = "$NODE_DIR/containerd/opt"
[plugins.'io.containerd.image-verifier.v1.bindir']
  bin_dir = "$NODE_DIR/containerd/image-verifier"
[plugins.'io.containerd.nri.v1.nri']
  disable = true
[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = "$IMAGE_PREFIX/pause:$IMAGE_TAG"
# Registry hosts (hosts.toml per registry host, read at each pull): empty, so nothing can be
# pulled; `scripts/image_registry.py hosts --certs-dir` sends a registry host to a local one.
[plugins.'io.containerd.cri.v1.images'.registry]
  config_path = "$NODE_DIR/containerd/certs.d"
[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  cdi_spec_dirs = []
[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dirs = ["$(cd "$BIN/../cni-bin" && pwd -P)"]
  conf_dir = "$NODE_DIR/cni/net.d"
  max_conf_num = 1
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
  BinaryName = "$(readlink -f "$BIN/runc")"
  Root = "$NODE_DIR/runc"
  SystemdCgroup = false
[plugins.'io.containerd.grpc.v1.cri']
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
EOF
    cat >"$NODE_DIR/cni/net.d/10-mlp.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$NODE_NAME",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "mlp0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$NODE_DIR/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR"}]],
        "routes": [{"dst": "$SERVICE_CIDR"}, {"dst": "$HOST_IP/32"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
    cat >"$NODE_DIR/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_ROOT
containerRuntimeEndpoint: unix://$SOCK
imageServiceEndpoint: unix://$SOCK
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
tlsCertFile: $pki/kubelet-serving.crt
tlsPrivateKeyFile: $pki/kubelet-serving.key
oomScoreAdj: 0
podLogsDir: $NODE_DIR/pod-logs
failSwapOn: false
makeIPTablesUtilChains: false
clusterDNS: [$DNS_IP]
clusterDomain: cluster.local
resolvConf: $NODE_DIR/resolv.conf
maxPods: 110
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, nodefs.inodesFree: 1%, imagefs.available: 1%}
EOF
    cat >"$NODE_DIR/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $NODE_DIR/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE_NAME
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: [$NODE_IP/32]
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {localhostNodePorts: false}
EOF
}

# node_start_process NAME ARGS...: like `start`, inside the node's network namespace.
node_start_process() {
    local name="$1"
    shift
    PATH="$BIN:/usr/sbin:/usr/bin:/sbin:/bin" setsid nsenter --net="/run/netns/$NETNS" \
        "$BIN/$name" "$@" >"$CLUSTER_DIR/logs/$name.log" 2>&1 </dev/null &
    echo $! >"$CLUSTER_DIR/pids/$name"
}

node_wait() {
    local what="$1" process="$2"
    shift 2
    local deadline=$((SECONDS + READY_TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        pid_alive "$CLUSTER_DIR/pids/$process" \
            || { tail -n 30 "$CLUSTER_DIR/logs/$process.log" >&2; die "$process exited during startup"; }
        ((SECONDS < deadline)) || { tail -n 30 "$CLUSTER_DIR/logs/$process.log" >&2; die "timed out waiting for $what"; }
        sleep 0.3
    done
}

kubectl_node() { "$BIN/kubectl" --kubeconfig "$CLUSTER_DIR/kubeconfig" "$@"; }

node_import_images() {
    local image
    for image in "$BIN"/../node-images/*.tar; do
        "$BIN/ctr" --address "$SOCK" -n k8s.io images import \
            --base-name "$IMAGE_PREFIX/$(basename "$image" .tar)" "$image" >/dev/null
    done
}

# node_up API_PORT: containerd, kubelet, kube-proxy, kube-scheduler, kube-router, CoreDNS.
node_up() {
    local api_port="$1"
    node_store_claim
    write_node_config "$api_port"
    node_cgroups_up
    node_pod_egress_rules "$api_port"
    # The apiserver authenticates to the kubelet as kube-apiserver-kubelet-client; the kubelet
    # asks the apiserver (Webhook) whether that user may, as on any kubeadm cluster.
    kubectl_node create clusterrolebinding mlp-apiserver-kubelet --clusterrole system:kubelet-api-admin \
        --user kube-apiserver-kubelet-client >/dev/null
    kubectl_node apply --server-side -f "$ROOT/scripts/node/kube-router-rbac.yaml" >/dev/null

    node_log "starting containerd"
    node_start_process containerd --config "$NODE_DIR/containerd/config.toml"
    node_wait "containerd" containerd "$BIN/ctr" --address "$SOCK" version
    node_import_images

    node_log "starting kubelet as node $NODE_NAME ($NODE_IP)"
    node_start_process kubelet --config "$NODE_DIR/kubelet.yaml" \
        --kubeconfig "$NODE_DIR/kubelet.kubeconfig" --root-dir "$NODE_DIR/kubelet" \
        --cert-dir "$NODE_DIR/kubelet/pki" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --v 1
    node_start_process kube-proxy --config "$NODE_DIR/kube-proxy.yaml" --v 1
    start kube-scheduler --kubeconfig "$NODE_DIR/kube-scheduler.kubeconfig" \
        --authentication-kubeconfig "$NODE_DIR/kube-scheduler.kubeconfig" \
        --authorization-kubeconfig "$NODE_DIR/kube-scheduler.kubeconfig" \
        --leader-elect=false --secure-port 0 --profiling=false --v 1
    node_wait "node $NODE_NAME Ready" kubelet \
        kubectl_node wait --for condition=Ready "node/$NODE_NAME" --timeout 2s
    node_log "starting kube-router (NetworkPolicy)"
    node_start_process kube-router --run-firewall=true --run-router=false --run-service-proxy=false \
        --enable-cni=false --kubeconfig "$NODE_DIR/kube-router.kubeconfig" \
        --hostname-override "$NODE_NAME" --service-cluster-ip-range "$SERVICE_CIDR" \
        --health-port 0 --metrics-port 0 --v 1
    node_wait "kube-router's policy chains" kube-router in_netns iptables -w -S KUBE-ROUTER-FORWARD

    node_log "starting CoreDNS"
    DNS_IP="$DNS_IP" IMAGE="$IMAGE_PREFIX/coredns:$IMAGE_TAG" python3 -c '
import os, string, sys
sys.stdout.write(string.Template(open(sys.argv[1]).read()).substitute(os.environ))' \
        "$ROOT/scripts/node/coredns.yaml" | kubectl_node apply --server-side -f - >/dev/null
    node_wait "CoreDNS Ready" kubelet \
        kubectl_node -n kube-system rollout status deployment/coredns --timeout 2s
    printf 'SLOT=%s\nNODE_NAME=%s\nNODE_IP=%s\nHOST_IP=%s\nPOD_CIDR=%s\nSERVICE_CIDR=%s\nDNS_IP=%s\nNETNS=%s\nCONTAINERD_ADDRESS=%s\n' \
        "$SLOT" "$NODE_NAME" "$NODE_IP" "$HOST_IP" "$POD_CIDR" "$SERVICE_CIDR" "$DNS_IP" "$NETNS" "$SOCK" \
        >"$CLUSTER_DIR/node.env"
}

# Containers: kill every process in the node's cgroups (by PID), then have containerd delete
# the dead tasks, all at once, so their shims exit.
node_stop_containers() {
    node_cgroups_kill
    [[ -S "$SOCK" ]] && pid_alive "$CLUSTER_DIR/pids/containerd" || return 0
    local ctr=("$BIN/ctr" --address "$SOCK" -n k8s.io) id
    for id in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
        "${ctr[@]}" tasks delete -f "$id" >/dev/null 2>&1 &
    done
    wait
}

# Shims containerd started for this node (found by our socket in their command line).
node_stop_shims() {
    local dir pid
    for dir in /proc/[0-9]*; do
        pid="${dir#/proc/}"
        { tr '\0' ' ' <"$dir/cmdline"; } 2>/dev/null | grep -qF -- "-address $SOCK " || continue
        kill -KILL "$pid" 2>/dev/null || true
    done
}

node_unmount() {
    local target
    while read -r target; do
        umount "$target" 2>/dev/null || umount -l "$target" 2>/dev/null || true
    done < <(awk -v dir="$CLUSTER_DIR/" 'index($2, dir) == 1 {print $2}' /proc/self/mounts | sort -r)
}

# node_down: everything node_up and node_claim did, in reverse. Safe to run twice.
node_down() {
    [[ -f "$CLUSTER_DIR/node-slot" ]] || return 0
    node_vars "$(cat "$CLUSTER_DIR/node-slot")"
    stop kube-scheduler kube-router kube-proxy kubelet
    node_stop_containers
    node_store_release
    stop containerd
    node_stop_shims
    node_store_hand_back
    node_cgroups_down
    node_unmount
    ip netns del "$NETNS" 2>/dev/null || true # the bridge, pod veths, chains and ipsets with it
    ip link del "$HOST_VETH" 2>/dev/null || true
    rm -rf /var/lib/cni/results/"$NODE_NAME"-* 2>/dev/null || true
    node_release
    rm -f "$CLUSTER_DIR/node-slot"
}
