"""Helm emitter: `charts/<platform.name>/`, a chart of the same objects as base/ and overlays/.

The templates are the builders' own output. The build (build/chart.py) builds each component
once with typed placeholders in place of every value an environment may change
(kinds.tunables), and text.py replaces them by `{{ ... }}` actions on `.Values`. Optional
tunables (autoscaling, disruption budget, topology spread, canary) are built on and off, and
whatever they add or remove, an object or a field, is wrapped in `{{- if }}`. So a template
reads like the base object, differs from it only at the tunables, and a builder change reaches
both emitters at once. The values files come from the same build the overlays use (its views,
`environments.image_pins`, each workload's resources and waivers), and the equivalence
test (tests/test_equivalence.py) proves `helm template -f values-<env>.yaml` equal to
`kustomize build overlays/<env>` on Helm 3 and 4.

Values hold only environment knobs. What the builders derive from the component is fixed in
the template: `secretEnv` entries (passed to the `env` helper as a fixed list and merged in the
builders' sorted order) and workload annotations that are not policy waivers (KServe's
deployment mode, beside the waivers helper). The waivers the builders derive (the Knative
queue-proxy's probe, the content-named Job's TTL) are recorded by the builders beside the
built workload and go into the values' `policyExceptions`, so one list feeds the helper and
numbers `checkov.io/skipN` as the builder does. Every object that carries the component's
waivers (the builders record which: the workload, a Trainer TrainingRuntime) gets the helper;
waivers only that object has (JobSet's TTL) are fixed data merged under the values'.

Content-named objects (kinds.py `content_named`: Jobs, PipelineVersions) are not templated over
values. Their name is a hash of their content and their spec is immutable, so a template would
let a value change the content under an unchanged name (an upgrade the apiserver refuses, or
KFP's webhook). They exist only in environments, so each environment's objects are rendered
whole, as in `overlays/<env>/<group>/resources/`, into `templates/<group>-<kind>-<env>.yaml`,
guarded by the `environment` value that `values-<env>.yaml` sets (null in values.yaml, like
base, which has none). Their components have no values.

Object names and namespaces are literal (never `.Release.*`) and nothing reads `.Capabilities`:
Argo CD renders charts with its own release name and the target cluster's versions.
"""

from __future__ import annotations

from platformgen.build import PlatformBuild
from platformgen.build.chart import KNOB_MODELS
from platformgen.emit.helm.chart import CHECKS, chart_yaml, content_digest, helpers, notes
from platformgen.emit.helm.hooks import test_hooks
from platformgen.emit.helm.readme import readme
from platformgen.emit.helm.schema import values_schema
from platformgen.emit.helm.templates import (
    component_templates,
    environment_templates,
    static_template,
    stems,
)
from platformgen.emit.helm.values import chart_values, values_difference, values_yaml
from platformgen.serialize import to_json, to_yaml

__all__ = ["KNOB_MODELS", "emit_helm"]


def emit_helm(built: PlatformBuild) -> dict[str, str]:
    """Every file of `charts/<platform.name>/`."""
    spec = built.spec
    chart = spec.platform.name
    root = f"charts/{chart}"
    files: dict[str, str] = {}
    groups = built.base.groups
    for group, objects in groups.items():
        if group in built.charts:
            source = built.charts[group]
            for path, text in component_templates(source, chart).items():
                files[f"{root}/{path}"] = text
            for path, text in test_hooks(source, objects, chart).items():
                files[f"{root}/{path}"] = text
            continue
        for m, stem in zip(objects, stems(objects, group), strict=True):
            files[f"{root}/templates/{stem}.yaml"] = static_template(m, chart)
    for path, text in environment_templates(built, chart).items():
        files[f"{root}/{path}"] = text
    files[f"{root}/templates/_helpers.tpl"] = helpers(chart)
    files[f"{root}/templates/checks.yaml"] = CHECKS.format(chart=chart)
    files[f"{root}/templates/NOTES.txt"] = notes(spec, list(built.base.objects()))
    defaults = chart_values(built.base, spec)
    files[f"{root}/values.yaml"] = values_yaml(defaults, spec)
    for environment, environment_build in built.environments.items():
        difference = values_difference(defaults, chart_values(environment_build, spec))
        files[f"{root}/values-{environment}.yaml"] = to_yaml(difference)
    schema = values_schema(spec)
    files[f"{root}/values.schema.json"] = to_json(schema)
    files[f"{root}/README.md"] = readme(spec, defaults, schema)
    packaged = {path.removeprefix(f"{root}/"): text for path, text in files.items()}
    files[f"{root}/Chart.yaml"] = to_yaml(chart_yaml(spec, content_digest(packaged)))
    return dict(sorted(files.items()))
