#!/usr/bin/env bash
# Build the real controllers the controllers e2e tests run as host processes, from the Go
# module proxy, and copy their upstream data files (CRDs, webhook configurations, KServe's
# inferenceservice-config) out of the same modules (`make controllers-tools`).
#
#   .tools/bin/{kserve-manager,kserve-agent,trainer-controller-manager,jobset-manager,
#               katib-controller,spark-operator}
#   .tools/controllers/<name>/{crds/,webhook/,config/}       upstream files, unmodified
#   .tools/controllers/SOURCES                                module@version and h1 hash
#
# Every controller is built in a throw-away wrapper module that requires the pinned module and
# copies EVERY `replace` of the upstream go.mod (KServe pins k8s.io/*, controller-runtime, grpc
# and others that way; `go install` refuses a module with replaces). A relative replace
# (`=> ./x`) cannot be copied and stops the build with its name.
#
# Idempotent: binaries are cached per pinned version in $TOOLS_CACHE/<name>@<version>/;
# a second run relinks and recopies the data files (seconds). Versions: scripts/versions.env.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"
BUILD_JOBS="${MLP_BUILD_JOBS:-2}"
DATA="$TOOLS_DIR/controllers"

# name  module  version  package
CONTROLLERS=(
    "kserve-manager github.com/kserve/kserve $KSERVE_VERSION github.com/kserve/kserve/cmd/manager"
    "kserve-agent github.com/kserve/kserve $KSERVE_VERSION github.com/kserve/kserve/cmd/agent"
    "trainer-controller-manager github.com/kubeflow/trainer/v2 $TRAINER_VERSION github.com/kubeflow/trainer/v2/cmd/trainer-controller-manager"
    "jobset-manager sigs.k8s.io/jobset $JOBSET_VERSION sigs.k8s.io/jobset"
    "katib-controller github.com/kubeflow/katib $KATIB_VERSION github.com/kubeflow/katib/cmd/katib-controller/v1beta1"
    "spark-operator github.com/kubeflow/spark-operator/v2 $SPARK_OPERATOR_VERSION github.com/kubeflow/spark-operator/v2/cmd/operator"
)

# name  module  version  files: path-in-module=>path-under-.tools/controllers/<name> (a path
# ending in / is a directory, copied whole: the webhook directories are kustomizations whose
# patches add what upstream's install adds, e.g. JobSet's pod objectSelector)
DATA_FILES=(
    "kserve github.com/kserve/kserve $KSERVE_VERSION config/crd/full/=>crds config/webhook/=>webhook config/configmap/inferenceservice.yaml=>config/inferenceservice.yaml"
    "trainer github.com/kubeflow/trainer/v2 $TRAINER_VERSION manifests/base/crds/=>crds manifests/base/webhook/=>webhook"
    "jobset sigs.k8s.io/jobset $JOBSET_VERSION config/components/crd/bases/=>crds config/components/webhook/=>webhook"
    "katib github.com/kubeflow/katib $KATIB_VERSION manifests/v1beta1/components/crd/=>crds manifests/v1beta1/components/webhook/=>webhook manifests/v1beta1/installs/katib-standalone/katib-config.yaml=>config/katib-config.yaml"
    "spark-operator github.com/kubeflow/spark-operator/v2 $SPARK_OPERATOR_VERSION config/crd/bases/=>crds"
)

# write_wrapper DIR MODULE VERSION GOMOD PACKAGE: a module in DIR requiring MODULE@VERSION with
# the go version and every replace of GOMOD (read with `go mod edit -json`, written with
# `go mod edit`), and DIR/tools.go importing PACKAGE.
write_wrapper() {
    local dir="$1" module="$2" version="$3" gomod="$4" pkg="$5"
    mkdir -p "$dir"
    local edits
    edits="$(go mod edit -json "$gomod" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print("-go=" + d["Go"])
for r in d.get("Replace") or []:
    old, new = r["Old"], r["New"]
    if not new.get("Version"):
        sys.exit("replace %s => %s is a relative path: cannot be copied" % (old["Path"], new["Path"]))
    print("-replace=%s%s=%s@%s" % (old["Path"], "@" + old["Version"] if old.get("Version") else "", new["Path"], new["Version"]))
')"
    (
        cd "$dir"
        rm -f go.mod go.sum
        go mod init "mlp.local/build/${module//\//-}" 2>/dev/null
        # shellcheck disable=SC2086
        go mod edit -require="$module@$version" $edits
        printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$pkg" >tools.go
    )
    log "$module@$version: $(grep -c -- '-replace=' <<<"$edits" || true) replaces copied"
}

install_controller() {
    local name="$1" module="$2" version="$3" pkg="$4"
    local dest="$TOOLS_CACHE/$name@$version"
    [[ -x "$dest/$name" ]] || locked "$name@$version" _build_controller "$@"
    link_tool "$name" "$dest/$name"
    printf '%-28s %-8s %s\n' "$name" "$version" "$TOOLS_BIN/$name"
}

_build_controller() {
    local name="$1" module="$2" version="$3" pkg="$4"
    local dest="$TOOLS_CACHE/$name@$version"
    [[ ! -x "$dest/$name" ]] || return 0 # built by another process while we waited
    local meta gomod
    meta="$(cd "$TOOLS_CACHE" && GOFLAGS= go mod download -json "$module@$version")"
    gomod="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["GoMod"])' "$meta")"
    local src="$TOOLS_CACHE/src/$name@$version"
    rm -rf "$src"
    write_wrapper "$src" "$module" "$version" "$gomod" "$pkg"
    local started=$SECONDS
    log "building $name $version in $src (first build takes minutes; cached afterwards)"
    (cd "$src" && nice -n 10 go mod tidy)
    mkdir -p "$dest"
    (cd "$src" && CGO_ENABLED=0 nice -n 10 go build -p "$BUILD_JOBS" -trimpath -ldflags "-s -w" \
        -o "$dest/$name.tmp" "$pkg")
    mv "$dest/$name.tmp" "$dest/$name"
    log "$name $version built in $((SECONDS - started))s"
}

# copy_data NAME MODULE VERSION SPEC...: the upstream files into .tools/controllers/NAME.
copy_data() {
    local name="$1" module="$2" version="$3"
    shift 3
    local dir spec from to out="$DATA.tmp/$name"
    dir="$(go_mod_dir "$module" "$version")"
    mkdir -p "$out"
    for spec in "$@"; do
        from="${spec%%=>*}" to="${spec#*=>}"
        if [[ "$from" == */ ]]; then
            cp -R "$dir/${from%/}" "$out/$to"
        else
            mkdir -p "$(dirname "$out/$to")"
            cp "$dir/$from" "$out/$to"
        fi
    done
    chmod -R u+w "$out"
    printf '%s@%s %s\n' "$module" "$version" \
        "$(cat "$(go env GOMODCACHE)/cache/download/$module/@v/$version.ziphash")" >>"$DATA.tmp/SOURCES"
}

for entry in "${CONTROLLERS[@]}"; do
    # shellcheck disable=SC2086
    install_controller $entry
done
rm -rf "$DATA.tmp"
mkdir -p "$DATA.tmp"
for entry in "${DATA_FILES[@]}"; do
    # shellcheck disable=SC2086
    copy_data $entry
done
rm -rf "$DATA" && mv "$DATA.tmp" "$DATA"
log "controller data files: $(find "$DATA" -name '*.yaml' | wc -l) YAML files in $DATA"
