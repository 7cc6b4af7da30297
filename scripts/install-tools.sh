#!/usr/bin/env bash
# Build the pinned Kubernetes validation toolchain into .tools/ (what `make tools` runs).
#
#   .tools/bin/{kustomize,kubeconform,helm,helm4}
#                                            go install'ed from the Go module proxy (lib.sh);
#                                            `helm` is Helm 3, `helm4` is Helm 4 (two majors,
#                                            two names on one PATH: nothing shadows the other)
#   .tools/schemas/kubernetes/v<K8S>-standalone-strict/<kind><kind-suffix>.json
#                                            core schemas, kubeconform's own layout
#   .tools/schemas/crds/<group>/<kind>_<version>-strict.json
#                                            CRD schemas
#   .tools/schemas/SOURCES                   provenance: module@version and h1 hash per input
#   .tools/crds/<project>/*.yaml             the upstream CRD YAMLs, for server-side apply
#
# Core schemas: converted from api/openapi-spec/v3 of the k8s.io/kubernetes module itself (about
# 20 MB per version through `go mod download`), by scripts/schemas/core_to_jsonschema.py. Chosen
# over the kubernetes-validate package because the v3 spec is the apiserver's own published
# schema for that exact patch release (it already types Quantity as string-or-number and
# IntOrString as integer-or-string), and because the strictness rules are then ours, written
# once and shared with the CRD conversion (scripts/schemas/openapi.py): every object that lists
# its properties rejects unknown ones. Each file carries the definitions it uses (no $ref to a
# remote or shared definitions file), descriptions are dropped: ~2.5 MB per version.
# CRD schemas: scripts/schemas/crd_to_jsonschema.py on CRD YAMLs from the upstream Go modules
# (never from a web download). Kubeflow Pipelines' v2beta1 CRDs come from the repo instead
# (crds/kubeflow-pipelines/, vendored with PROVENANCE.md): the module proxy refuses
# github.com/kubeflow/pipelines, so they cannot be fetched like the others.
#
# Idempotent: binaries are cached per pinned version (lib.sh), and the schemas per hash of
# their pinned inputs and converter code in $TOOLS_CACHE/schemas-<hash>, which .tools/schemas
# and .tools/crds link to. A second run only relinks and prints the summary.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

KUSTOMIZE_VERSION="v5.8.1"
KUBECONFORM_VERSION="v0.7.0"
HELM_VERSION="v3.22.0"
# Helm stamps the Kubernetes version it assumes for `helm template` from its client-go (v0.37).
HELM_K8S_MAJOR="1"
HELM_K8S_MINOR="37"
# Helm 4 needs no Kubernetes-version ldflags: it reads the k8s.io/client-go version (v0.37.2 in
# v4.3.2's go.mod) from the binary's own build info (internal/version.K8sIOClientGoModVersion),
# which `go install` embeds. Only the version string is stamped.
HELM4_VERSION="v4.3.2"

# The Kubernetes releases we validate against (scripts/versions.env, read by platformgen too).
IFS=, read -r -a KUBERNETES_VERSIONS <<<"$KUBERNETES_VERSIONS"

PYYAML_VERSION="6.0.3"

# project  module  version  directory-in-module  [h1 hash, for modules the checksum db lacks]
CRD_SOURCES=(
    "prometheus-operator github.com/prometheus-operator/prometheus-operator v0.93.0 example/prometheus-operator-crd"
    "argo-cd github.com/argoproj/argo-cd/v3 v3.5.1 manifests/crds"
    "kserve github.com/kserve/kserve $KSERVE_VERSION config/crd/full"
    "katib github.com/kubeflow/katib $KATIB_VERSION manifests/v1beta1/components/crd h1:uexj303nRkGtTFtTkY4McCt6J0TCtnerX3i3E7TRA5M="
    "kubeflow-trainer github.com/kubeflow/trainer/v2 $TRAINER_VERSION manifests/base/crds"
    "spark-operator github.com/kubeflow/spark-operator/v2 $SPARK_OPERATOR_VERSION config/crd/bases"
)

# The machine is shared: compile with at most two jobs, one tool after the other.
export GOFLAGS="${GOFLAGS:-} -p=${MLP_BUILD_JOBS:-2}"

# install_go_tool NAME PACKAGE VERSION LDFLAGS VERSION_COMMAND...: go_install, then check that
# the linked binary reports VERSION; a cached build that does not (say, built before its
# version ldflags were set) is rebuilt once.
install_go_tool() {
    local name="$1" pkg="$2" version="$3" ldflags="$4"
    shift 4
    go_install "$name" "$pkg" "$version" "$ldflags"
    if [[ "$("$TOOLS_BIN/$name" "$@" 2>&1)" != *"$version"* ]]; then
        log "cached $name does not report $version: rebuilding"
        rm -rf "${TOOLS_CACHE:?}/$name@$version"
        go_install "$name" "$pkg" "$version" "$ldflags"
        local reported
        reported="$("$TOOLS_BIN/$name" "$@" 2>&1)"
        if [[ "$reported" != *"$version"* ]]; then
            log "error: $name reports '$reported', expected $version"
            return 1
        fi
    fi
    printf '%-12s %-8s %s\n' "$name" "$version" "$TOOLS_BIN/$name"
}

install_go_tool kustomize sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION" "-s -w" version
install_go_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION" \
    "-s -w -X main.version=$KUBECONFORM_VERSION" -v
install_go_tool helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" \
    "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
-X helm.sh/helm/v3/internal/version.gitTreeState=clean \
-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=$HELM_K8S_MAJOR \
-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$HELM_K8S_MINOR \
-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=$HELM_K8S_MAJOR \
-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$HELM_K8S_MINOR" \
    version --short
install_go_tool helm4 helm.sh/helm/v4/cmd/helm "$HELM4_VERSION" \
    "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM4_VERSION \
-X helm.sh/helm/v4/internal/version.gitTreeState=clean" \
    version --short

# --- schemas ----------------------------------------------------------------------------------
schema_inputs() {
    printf 'kubernetes %s\n' "${KUBERNETES_VERSIONS[@]}"
    printf 'crd %s\n' "${CRD_SOURCES[@]}"
    printf 'pyyaml %s\n' "$PYYAML_VERSION"
    cat "$ROOT"/scripts/schemas/*.py
    cat "$ROOT"/crds/*/*.yaml
}
schema_key="$(schema_inputs | sha256sum | cut -c1-16)"
schema_cache="$TOOLS_CACHE/schemas-$schema_key"

link_dir() {
    # link_dir NAME TARGET: .tools/NAME -> TARGET (replacing an older link or directory).
    local link="$TOOLS_DIR/$1"
    if [[ -L "$link" || -e "$link" ]] && [[ "$(readlink "$link")" != "$2" ]]; then
        rm -rf "$link"
    fi
    ln -sfn "$2" "$link"
}

build_schemas() {
    [[ ! -f "$schema_cache/schemas/SOURCES" ]] || return 0 # built by another process meanwhile
    local tmp="$schema_cache.tmp"
    rm -rf "$tmp"
    mkdir -p "$tmp/schemas/kubernetes"
    local python sources="$tmp/schemas/SOURCES"
    export PYTHONDONTWRITEBYTECODE=1
    python="$(pip_env schema-tools "pyyaml==$PYYAML_VERSION")"
    printf '# Inputs of the schemas in this directory (generated by scripts/install-tools.sh)\n' >"$sources"

    local version dir newest_spec=""
    for version in "${KUBERNETES_VERSIONS[@]}"; do
        log "converting Kubernetes $version core schemas (k8s.io/kubernetes api/openapi-spec/v3)"
        dir="$(go_mod_dir k8s.io/kubernetes "v$version")"
        "$python" "$ROOT/scripts/schemas/core_to_jsonschema.py" "$dir/api/openapi-spec/v3" \
            "$tmp/schemas/kubernetes/v$version-standalone-strict"
        printf 'k8s.io/kubernetes@v%s api/openapi-spec/v3 %s\n' "$version" \
            "$(module_sum k8s.io/kubernetes "v$version")" >>"$sources"
        newest_spec="$dir/api/openapi-spec/v3"
    done

    local entry project module mversion subdir sum projects=()
    for entry in "${CRD_SOURCES[@]}"; do
        read -r project module mversion subdir sum <<<"$entry"
        log "fetching $project CRDs ($module@$mversion $subdir)"
        dir="$(go_mod_dir "$module" "$mversion" "${sum:-}")"
        [[ -d "$dir/$subdir" ]] || { log "error: $module@$mversion has no $subdir"; return 1; }
        projects+=("$project=$dir/$subdir")
        printf '%s@%s %s %s\n' "$module" "$mversion" "$subdir" "$(module_sum "$module" "$mversion")" \
            >>"$sources"
    done
    # CRDs vendored in the repo (with their provenance), for projects the module proxy refuses.
    for dir in "$ROOT"/crds/*/; do
        project="$(basename "$dir")"
        projects+=("$project=${dir%/}")
        printf 'repo crds/%s %s\n' "$project" \
            "$(cat "$dir"*.yaml | sha256sum | cut -c1-64)" >>"$sources"
    done
    log "converting CRD schemas"
    "$python" "$ROOT/scripts/schemas/crd_to_jsonschema.py" "$newest_spec" \
        "$tmp/schemas/crds" "$tmp/crds" "${projects[@]}"

    rm -rf "$schema_cache"
    mv "$tmp" "$schema_cache"
}

# module_sum MODULE VERSION: the h1 hash of a downloaded module (from the module cache; the
# module paths here are all lower case, so no case-encoding is needed).
module_sum() {
    cat "$(go env GOMODCACHE)/cache/download/$1/@v/$2.ziphash"
}

if [[ ! -f "$schema_cache/schemas/SOURCES" ]]; then
    locked "schemas-$schema_key" build_schemas
fi
link_dir schemas "$schema_cache/schemas"
link_dir crds "$schema_cache/crds"

summary=()
for version in "${KUBERNETES_VERSIONS[@]}"; do
    count="$(find "$TOOLS_DIR/schemas/kubernetes/v$version-standalone-strict/" -name '*.json' | wc -l)"
    summary+=("Kubernetes $version ($count kinds),")
done
crd_count="$(find "$TOOLS_DIR/schemas/crds/" -name '*.json' | wc -l)"
crd_projects="$(cd "$TOOLS_DIR/crds" && ls | paste -sd, -)"
printf '%-12s %-8s %s
' schemas strict \
    "${summary[*]} $crd_count CRD kinds ($crd_projects) in $TOOLS_DIR/schemas"
