#!/usr/bin/env bash
# A real, throw-away Kubernetes control plane on 127.0.0.1, with no kubelet and no containers:
# etcd + kube-apiserver (client-cert auth, RBAC, Pod Security admission enforcing `restricted`
# by default) + kube-controller-manager (Deployments create ReplicaSets, ReplicaSets and Jobs
# create Pods, so Pod Security is enforced on real Pods). Pods stay Pending, which is fine.
#
#   scripts/cluster.sh up     start (or reuse a healthy) cluster; prints the kubeconfig path
#   scripts/cluster.sh down   stop the processes by PID and delete the state
#   scripts/cluster.sh env    print `export KUBECONFIG=...` for eval
#   scripts/cluster.sh clean-stores   remove the image stores nodes keep (NODE_STORE), unless in use
#
# With NODE=1, `up` also starts one real node (scripts/cluster-node.sh: containerd, runc,
# kubelet, kube-proxy, kube-scheduler, kube-router for NetworkPolicy, CoreDNS), in a network
# namespace of its own, so pods run; the apiserver then listens on the host end of the node's
# veth instead of 127.0.0.1. `down` stops and removes the node as well. Needs root.
#
# With CLUSTER_OWNER_PID set, `up` also starts a watcher that runs `down` when that process
# exits, so a killed test session leaves no control plane behind.
#
# State (PKI, etcd data, logs, kubeconfig) lives in $CLUSTER_DIR, default .run/cluster/ (ignored
# by git). Tests pass their own CLUSTER_DIR so they never touch a developer's cluster.
# Binaries come from scripts/install-cluster.sh via .tools/bin.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLUSTER_DIR="${CLUSTER_DIR:-$ROOT/.run/cluster}"
BIN="${CLUSTER_BIN:-$ROOT/.tools/bin}"
READY_TIMEOUT="${CLUSTER_READY_TIMEOUT:-180}"
SERVICE_CIDR="10.0.0.0/24"
SERVICE_IP="10.0.0.1"
BIND_IP="127.0.0.1"
NODE="${NODE:-0}"
[[ "$NODE" == 0 || "$NODE" == 1 ]] || { echo "cluster: NODE must be 0 or 1" >&2; exit 2; }

log() { printf 'cluster: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

kubeconfig() { printf '%s\n' "$CLUSTER_DIR/kubeconfig"; }

# free_port: a TCP port that is free on 127.0.0.1 right now.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# start NAME ARGS...: run a binary detached in its own session, log to logs/NAME.log.
start() {
    local name="$1"; shift
    setsid "$BIN/$name" "$@" >"$CLUSTER_DIR/logs/$name.log" 2>&1 </dev/null &
    echo $! >"$CLUSTER_DIR/pids/$name"
}

# stop [-w SECONDS] NAME...: SIGTERM each by PID, all at once (each takes a second or two to
# shut down gracefully), wait up to SECONDS (15) for all of them, then SIGKILL what is left.
stop() {
    local wait=15
    if [[ "$1" == -w ]]; then
        wait="$2"
        shift 2
    fi
    local name pidfile pid pids=() names=()
    for name in "$@"; do
        pidfile="$CLUSTER_DIR/pids/$name"
        [[ -f "$pidfile" ]] || continue
        pid="$(cat "$pidfile")"
        rm -f "$pidfile"
        [[ "$pid" == "$$" ]] && continue # the watcher running `down` itself
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
            names+=("$name")
        fi
    done
    local i j alive
    for ((i = 0; i <= wait * 10; i++)); do
        alive=0
        for pid in "${pids[@]}"; do
            kill -0 "$pid" 2>/dev/null && alive=1
        done
        ((alive)) || return 0
        ((i < wait * 10)) && sleep 0.1
    done
    for ((j = 0; j < ${#pids[@]}; j++)); do
        if kill -0 "${pids[j]}" 2>/dev/null; then
            log "${names[j]} (pid ${pids[j]}) still running ${wait}s after SIGTERM; killing"
            kill -KILL "${pids[j]}" 2>/dev/null || true
        fi
    done
}

healthy() {
    [[ -f "$CLUSTER_DIR/kubeconfig" ]] || return 1
    local name
    for name in etcd kube-apiserver kube-controller-manager; do
        pid_alive "$CLUSTER_DIR/pids/$name" || return 1
    done
    if ((NODE)); then
        [[ -f "$CLUSTER_DIR/node.env" ]] || return 1
        for name in containerd kubelet kube-proxy kube-scheduler kube-router; do
            pid_alive "$CLUSTER_DIR/pids/$name" || return 1
        done
    fi
    "$BIN/kubectl" --kubeconfig "$CLUSTER_DIR/kubeconfig" get --raw /readyz >/dev/null 2>&1
}

# cert NAME SUBJECT [SAN]: a key and a certificate signed by the cluster CA.
cert() {
    local name="$1" subject="$2" san="${3:-}" pki="$CLUSTER_DIR/pki"
    local ext="$pki/$name.ext"
    if [[ -n "$san" ]]; then
        printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n' "$san" >"$ext"
    else
        printf 'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n' >"$ext"
    fi
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$pki/$name.key" -subj "$subject" -out "$pki/$name.csr" 2>/dev/null
    openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
        -CAcreateserial -days 2 -extfile "$ext" -out "$pki/$name.crt" 2>/dev/null
    rm -f "$pki/$name.csr" "$ext"
}

make_pki() {
    local pki="$CLUSTER_DIR/pki"
    mkdir -p "$pki"
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -keyout "$pki/ca.key" -subj "/CN=mlp-e2e-ca" -out "$pki/ca.crt" 2>/dev/null
    cert apiserver "/CN=kube-apiserver" \
        "IP:127.0.0.1,IP:$BIND_IP,IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
    cert admin "/O=system:masters/CN=mlp-e2e-admin"
    cert controller-manager "/CN=system:kube-controller-manager"
    # Service-account token signing key pair (RSA: the algorithm every consumer accepts).
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$pki/sa.key" 2>/dev/null
    openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub"
    chmod 600 "$pki"/*.key
}

# write_kubeconfig FILE USER SERVER
write_kubeconfig() {
    local file="$1" user="$2" server="$3" pki="$CLUSTER_DIR/pki"
    cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: mlp-e2e
  cluster:
    server: $server
    certificate-authority: $pki/ca.crt
users:
- name: $user
  user:
    client-certificate: $pki/$user.crt
    client-key: $pki/$user.key
contexts:
- name: mlp-e2e
  context: {cluster: mlp-e2e, user: $user}
current-context: mlp-e2e
EOF
    chmod 600 "$file"
}

# Pod Security admission defaults for namespaces without labels: enforce `restricted`.
# (--allow-privileged=true, as on any real cluster, so that Pod Security, not the API server's
# blanket switch, is what rejects privileged containers.)
# Namespace labels written by the generator still take precedence, as in any real cluster.
write_admission_config() {
    cat >"$CLUSTER_DIR/admission.yaml" <<'EOF'
apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodSecurity
  configuration:
    apiVersion: pod-security.admission.config.k8s.io/v1
    kind: PodSecurityConfiguration
    defaults:
      enforce: restricted
      enforce-version: latest
      audit: restricted
      audit-version: latest
      warn: restricted
      warn-version: latest
    exemptions:
      namespaces: [kube-system]
EOF
}

wait_ready() {
    local deadline=$((SECONDS + READY_TIMEOUT)) name
    until "$BIN/kubectl" --kubeconfig "$CLUSTER_DIR/kubeconfig" get --raw /readyz >/dev/null 2>&1; do
        for name in etcd kube-apiserver; do
            pid_alive "$CLUSTER_DIR/pids/$name" \
                || { tail -n 30 "$CLUSTER_DIR/logs/$name.log" >&2; die "$name exited during startup"; }
        done
        ((SECONDS < deadline)) \
            || { tail -n 30 "$CLUSTER_DIR/logs/kube-apiserver.log" >&2; die "kube-apiserver not ready after ${READY_TIMEOUT}s"; }
        sleep 0.5
    done
}

# The controllers the checks need. Node, cloud and volume controllers stay off: there are
# no nodes, and every extra loop costs CPU on a shared machine.
CONTROLLERS="deployment-controller,replicaset-controller,job-controller,cronjob-controller"
CONTROLLERS+=",statefulset-controller,daemonset-controller,namespace-controller"
CONTROLLERS+=",garbage-collector-controller,serviceaccount-controller,serviceaccount-token-controller"
# ResourceQuota admission needs the quota controller to have measured a namespace's usage, and
# the built-in admin/edit/view ClusterRoles get their rules from the aggregation controller.
CONTROLLERS+=",resourcequota-controller,clusterrole-aggregation-controller"
# With a node: its Ready condition and taints, Service endpoints, the kube-root-ca.crt
# ConfigMap every pod mounts, and garbage collection of pods.
NODE_CONTROLLERS=",node-lifecycle-controller,endpointslice-controller,endpointslice-mirroring-controller"
NODE_CONTROLLERS+=",root-ca-certificate-publisher-controller,pod-garbage-collector-controller"
# Binding a claim to a PersistentVolume the test made (hostPath: the node has no provisioner).
NODE_CONTROLLERS+=",persistentvolume-binder-controller,persistentvolume-protection-controller"
NODE_CONTROLLERS+=",persistentvolumeclaim-protection-controller"

source "$ROOT/scripts/cluster-node.sh"

cmd_up() {
    if healthy; then
        log "already running"
        kubeconfig
        return 0
    fi
    local name
    for name in etcd kube-apiserver kube-controller-manager; do
        [[ -x "$BIN/$name" ]] || die "$BIN/$name missing: run scripts/install-cluster.sh (make cluster-tools)"
    done
    ((NODE)) && node_check_tools
    cmd_down_quiet
    rm -rf "$CLUSTER_DIR"
    mkdir -p "$CLUSTER_DIR"/{logs,pids,etcd}
    chmod 700 "$CLUSTER_DIR" "$CLUSTER_DIR/etcd"
    if [[ -n "${CLUSTER_OWNER_PID:-}" ]]; then
        # Tie the cluster to its owner (the pytest session): if the owner dies without
        # running `down` (killed, crashed), this watcher stops the processes, so no control
        # plane (or node) keeps eating the shared cores. Started first, so it also cleans up
        # after an owner that dies while the cluster is starting.
        setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 2; done; exec "$2" down' \
            cluster-watcher "$CLUSTER_OWNER_PID" "$ROOT/scripts/cluster.sh" \
            >"$CLUSTER_DIR/logs/watcher.log" 2>&1 </dev/null &
        echo $! >"$CLUSTER_DIR/pids/watcher"
    fi
    local node_args=() controllers="$CONTROLLERS"
    if ((NODE)); then
        node_claim # sets the node's addresses and ranges (SERVICE_CIDR, HOST_IP, ...)
        node_network_up
        BIND_IP="$HOST_IP"
        controllers+="$NODE_CONTROLLERS"
    fi
    make_pki
    ((NODE)) && node_certs
    write_admission_config

    local etcd_port peer_port api_port
    etcd_port="$(free_port)"
    peer_port="$(free_port)"
    api_port="$(free_port)"
    # A node's apiserver listens on its own veth address, so the usual port is free there, and
    # NetworkPolicies that allow egress to the apiserver on 6443 mean what they say.
    ((NODE)) && api_port=6443
    local pki="$CLUSTER_DIR/pki"
    local server="https://$BIND_IP:$api_port"
    write_kubeconfig "$CLUSTER_DIR/kubeconfig" admin "$server"
    write_kubeconfig "$CLUSTER_DIR/controller-manager.kubeconfig" controller-manager "$server"

    log "starting etcd on 127.0.0.1:$etcd_port"
    # --unsafe-no-fsync: a throw-away test store; durability would only cost time.
    start etcd --name e2e --data-dir "$CLUSTER_DIR/etcd" \
        --listen-client-urls "http://127.0.0.1:$etcd_port" \
        --advertise-client-urls "http://127.0.0.1:$etcd_port" \
        --listen-peer-urls "http://127.0.0.1:$peer_port" \
        --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
        --initial-cluster "e2e=http://127.0.0.1:$peer_port" \
        --listen-metrics-urls "" --unsafe-no-fsync --log-level warn

    if ((NODE)); then
        node_args=(--authorization-mode Node,RBAC
            --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt"
            --kubelet-client-key "$pki/apiserver-kubelet-client.key"
            --kubelet-certificate-authority "$pki/ca.crt"
            --kubelet-preferred-address-types InternalIP)
    else
        node_args=(--authorization-mode RBAC)
    fi
    log "starting kube-apiserver on $server"
    start kube-apiserver \
        --etcd-servers "http://127.0.0.1:$etcd_port" \
        --bind-address "$BIND_IP" --advertise-address "$BIND_IP" --secure-port "$api_port" \
        --cert-dir "$pki" --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
        --client-ca-file "$pki/ca.crt" \
        "${node_args[@]}" --anonymous-auth=false \
        --allow-privileged=true \
        --enable-admission-plugins NamespaceLifecycle,ServiceAccount,PodSecurity,DefaultStorageClass,ResourceQuota,LimitRanger \
        --admission-control-config-file "$CLUSTER_DIR/admission.yaml" \
        --service-account-issuer https://kubernetes.default.svc \
        --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
        --service-cluster-ip-range "$SERVICE_CIDR" \
        --profiling=false --v 1
    wait_ready

    log "starting kube-controller-manager"
    start kube-controller-manager \
        --kubeconfig "$CLUSTER_DIR/controller-manager.kubeconfig" \
        --authentication-kubeconfig "$CLUSTER_DIR/controller-manager.kubeconfig" \
        --authorization-kubeconfig "$CLUSTER_DIR/controller-manager.kubeconfig" \
        --use-service-account-credentials \
        --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
        --controllers "$controllers" \
        --bind-address 127.0.0.1 --secure-port 0 --leader-elect=false \
        --concurrent-deployment-syncs 2 --concurrent-replicaset-syncs 2 \
        --profiling=false --v 1
    # The controller manager is up once it has created the default ServiceAccount.
    local deadline=$((SECONDS + READY_TIMEOUT))
    until "$BIN/kubectl" --kubeconfig "$CLUSTER_DIR/kubeconfig" -n default get serviceaccount default >/dev/null 2>&1; do
        pid_alive "$CLUSTER_DIR/pids/kube-controller-manager" \
            || { tail -n 30 "$CLUSTER_DIR/logs/kube-controller-manager.log" >&2; die "kube-controller-manager exited during startup"; }
        ((SECONDS < deadline)) || die "kube-controller-manager made no default ServiceAccount after ${READY_TIMEOUT}s"
        sleep 0.5
    done
    ((NODE)) && node_up "$api_port"
    log "ready: export KUBECONFIG=$(kubeconfig)"
    kubeconfig
}

cmd_down_quiet() {
    local name
    stop watcher
    node_down
    # An apiserver that advertises a non-loopback address (NODE=1) spends up to 20 s on SIGTERM
    # trying to remove itself from the `kubernetes` Endpoints; a throw-away cluster need not wait.
    stop -w 3 kube-controller-manager kube-apiserver
    stop etcd
}

cmd_down() {
    cmd_down_quiet
    rm -rf "$CLUSTER_DIR"
    log "stopped"
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
env) printf 'export KUBECONFIG=%s\n' "$(kubeconfig)" ;;
clean-stores) node_stores_clean ;;
*)
    echo "usage: $0 up|down|env|clean-stores" >&2
    exit 2
    ;;
esac
