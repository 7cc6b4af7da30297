"""serialize.to_yaml's direct writer against PyYAML's emitter, which defines the bytes."""

from __future__ import annotations

import random
from typing import Any

import pytest

from platformgen import serialize
from platformgen.render import render
from platformgen.spec.load import load_pipelines, load_spec

from support import SPECS


def _both(document: Any) -> tuple[str | None, str]:
    """(direct writer's text or None when it hands over to PyYAML, PyYAML's text)."""
    try:
        fast: str | None = serialize._fast_dump(document)
    except serialize._Unsupported:
        fast = None
    return fast, serialize._pyyaml_dump(document)


def test_every_document_of_the_full_fixture_is_written_directly_and_identically(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    documents: list[Any] = []
    real = serialize.to_yaml

    def recording(document: Any, header: bool = True) -> str:
        documents.append(document)
        return real(document, header)

    for module in ("kustomize", "helm", "argocd"):
        monkeypatch.setattr(f"platformgen.emit.{module}.to_yaml", recording)
    spec = load_spec(SPECS / "full.yaml")
    render(spec, load_pipelines(spec, SPECS))
    assert len(documents) > 100
    for document in documents:
        fast, reference = _both(document)
        assert fast == reference


EDGE_CASES: list[Any] = [
    {"a": "\nleading newline, kept trailing\n\n", "b": 1},  # |2+ then more keys
    {"a": "line\n  indented\n", "b": ["x\ny", {"c": "no newline\nat end"}]},
    {"x": [[1, [2, []]], [{}], {"k": []}], "t": True, "one": 1, "f": -0.0, "g": 1e20},
    {"quote": "it's", "num": "1e3", "oct": "0o17", "empty": "", "null": "null", "n": None},
    {"kind": "K", "apiVersion": "v1", "metadata": {"name": "n"}, "a": {"z": 1, "b": 2}},
    [{"apiVersion": "v1", "kind": "K", "a": 1}, {"kind": "K", "a": 1}],
    {"long": "word " * 300, "longer": ["x " * 600], "tab": "a\tb", "dq": "trailing \nspace"},
    {"unicode": "é ü 漢字", "colon": "a: b", "hash": "a #b", "dash": "- x", "star": "*x"},
]


@pytest.mark.parametrize("document", EDGE_CASES, ids=range(len(EDGE_CASES)))
def test_edge_cases_match_pyyaml(document: Any) -> None:
    fast, reference = _both(document)
    assert serialize.to_yaml(document, header=False) == reference
    assert fast is None or fast == reference


def test_random_scalars_match_pyyaml() -> None:
    rng = random.Random(10)
    alphabets = ["ab \n", " \n#:-'x", "ab'\" :\n{}[],&*!|>%@`?", "aé\t\u2028-.~=", "0123.e+-x"]
    direct = 0
    for _ in range(3000):
        alphabet = rng.choice(alphabets)
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 16)))
        document = rng.choice(
            [
                {"k": value, "m": [value, {"q": value, "r": [value, [value]]}]},
                [value, {"apiVersion": value, "b": [[value]]}],
                {"a": {value or "e": value}},
            ]
        )
        fast, reference = _both(document)
        assert serialize.to_yaml(document, header=False) == reference, repr(value)
        if fast is not None:
            direct += 1
            assert fast == reference, repr(value)
    assert direct > 1000  # most documents take the direct path


@pytest.mark.parametrize("key", [False, True])
def test_the_plain_word_shortcut_agrees_with_pyyaml(key: bool) -> None:
    rng = random.Random(11)
    words = [*serialize._YAML11_WORDS, "Null", "tRue", "v1", "e5", "inf", "NaN", "a" * 130]
    words += [
        "".join(rng.choice("aZ09_./-") for _ in range(rng.randint(1, 9))) for _ in range(2000)
    ]
    for word in words:
        try:
            expected = serialize._style_scalar(word, key)
        except serialize._Unsupported:
            continue
        assert serialize._scalar(str, word, key) == expected, word
