"""The Helm templates are written from data: typed placeholders and nodes, no sentinels."""

from __future__ import annotations

import copy

from platformgen.build.chart import Placeholder
from platformgen.emit.helm.text import Action, Block, Splice, When, write
from platformgen.serialize import HEADER


def test_a_placeholder_is_typed_and_survives_what_builders_do() -> None:
    p = Placeholder("canary.version", optional=True)
    for q in (copy.deepcopy(p), copy.copy(p)):
        assert isinstance(q, Placeholder) and (q.path, q.optional) == ("canary.version", True)
        assert q == p


def test_nodes_become_actions_where_they_sit() -> None:
    replicas, version = Placeholder("replicas"), Placeholder("canary.version", optional=True)
    document = {
        "apiVersion": "v1",
        "kind": "Thing",
        "metadata": {
            "name": "a",
            "annotations": {Splice('include "x" $c'): "", "note": f"serves {version} {{{{ now"},
        },
        "spec": {
            "replicas": replicas,
            When("extra", "$c.extra"): {"on": True},
            "items": [{"image": Action("$c.image"), "resources": Block("toYaml $c.r")}],
        },
    }
    text = write(document, [replicas, version], preamble="{{- $c := . }}\n")
    assert (
        text
        == HEADER
        + "{{- $c := . }}\n"
        + "\n".join(
            [
                "apiVersion: v1",
                "kind: Thing",
                "metadata:",
                "  annotations:",
                '    {{- include "x" $c | nindent 4 }}',
                '    {{- if not (kindIs "invalid" $c.canary.version) }}',
                '    note: serves {{ $c.canary.version | toJson }} {{ "{{" }} now',
                "    {{- end }}",
                "  name: a",
                "spec:",
                "  {{- if $c.extra }}",
                "  extra:",
                "    'on': true",
                "  {{- end }}",
                "  items:",
                "    - image: {{ $c.image }}",
                "      resources:",
                "        {{- toYaml $c.r | nindent 8 }}",
                "  replicas: {{ $c.replicas | toJson }}",
            ]
        )
        + "\n"
    )


def test_a_spec_string_cannot_pass_for_a_placeholder() -> None:
    """The delimiters carry a per-process nonce: a string that looks like one without it (a
    hostile spec value) stays text."""
    for forged in ("\ue000replicas\ue001", "\ue000:replicas\ue001", "\ue000nope\ue001"):
        document = {"apiVersion": "v1", "kind": "T", "metadata": {"name": forged}}
        text = write(document, [Placeholder("replicas")])
        assert "{{" not in text and forged in text
