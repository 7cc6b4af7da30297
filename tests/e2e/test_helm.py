"""The Helm chart's output per environment is accepted by the real API server, on Helm 3 and 4.

`helm template charts/<name> -f values-<env>.yaml` is applied with `--dry-run=server`: the
server runs defaulting, strict field validation and admission (Pod Security included) without
persisting, so the chart is judged by the same server as the overlays without disturbing the
objects the other e2e tests applied. That the chart renders the same objects as the overlay is
the generator's equivalence test (tests/test_equivalence.py).
"""

from __future__ import annotations

import subprocess

import pytest

from .conftest import Applied
from .kube import FIELD_MANAGER, ROOT, TOOLS_BIN, Cluster, require_tools

pytestmark = pytest.mark.tools

HELM_BINARIES = ("helm", "helm4")


@pytest.mark.parametrize("helm", HELM_BINARIES)
def test_helm_chart_is_accepted(cluster: Cluster, applied: Applied, env: str, helm: str) -> None:
    """After the overlay (and its CRDs) is applied, the chart's output is accepted too."""
    (chart,) = [p.parent for p in (ROOT / "charts").glob("*/Chart.yaml")]
    values = chart / f"values-{env}.yaml"
    assert values.is_file(), f"{chart.name} has no values-{env}.yaml for overlays/{env}"
    require_tools(helm)
    template = subprocess.run(
        [str(TOOLS_BIN / helm), "template", chart.name, str(chart), "-f", str(values)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert template.returncode == 0, f"{helm} template failed:\n{template.stderr}"
    result = cluster.kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        f"--field-manager={FIELD_MANAGER}-helm",
        "--force-conflicts",
        "--validate=strict",
        "-f",
        "-",
        stdin=template.stdout,
    )
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert not warnings, "\n".join(warnings)
