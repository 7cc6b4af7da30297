"""A component's RBAC rule that needs an escalating grant says why, and the Role carries it.

The refusals themselves are tests/fixtures/invalid/security-rbac-escalation.yaml (through the
CLI); here: the same rule with a written `exception` is accepted, the reason lands on the Role
as an annotation, and `resourceNames` reach the rule (a named Secret is the one allowed read).
"""

from __future__ import annotations

from platformgen.builders.role import RBAC_EXCEPTION, build_roles
from platformgen.errors import SpecError
from platformgen.resolve import resolve
from platformgen.spec.load import parse_spec

SPEC = """
platform: {name: tiny, partOf: tiny-platform}
namespaces:
  apps: {}
components:
  api:
    kind: Deployment
    namespace: apps
    role: web
    image: registry.example.com/api
    rbac:
      - namespace: apps
        apiGroups: ['']
        resources: [secrets]
        verbs: [get]
        resourceNames: [api-token]
      - {namespace: apps, apiGroups: [batch], resources: [jobs], verbs: [create]EXCEPTION}
environments: {dev: {}}
"""
REASON = "runs the nightly export Job it owns and nothing else"


def test_an_escalating_rule_needs_a_written_exception() -> None:
    try:
        parse_spec(SPEC.replace("EXCEPTION", ""))
    except SpecError as err:
        assert any("components.api.rbac[1].resources: create jobs" in p for p in err.problems)
    else:
        raise AssertionError("a Role that creates Jobs was accepted without an exception")


def test_the_exception_is_an_annotation_on_the_role() -> None:
    spec = parse_spec(SPEC.replace("EXCEPTION", f", exception: '{REASON}'"))
    (view,) = [v for v in resolve(spec, None) if v.name == "api"]
    role, _binding = build_roles(view)
    assert role["metadata"]["annotations"] == {f"{RBAC_EXCEPTION}1": REASON}
    assert role["rules"][0]["resourceNames"] == ["api-token"]
    assert "resourceNames" not in role["rules"][1]
