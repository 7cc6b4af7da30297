"""Registration and promotion are atomic on a filesystem and on S3, and hold between concurrent
*processes* (each its own interpreter, registry client and connections): a version number is
claimed by exactly one writer, and promotion is a compare-and-swap of the production pointer whose
log record is part of the same write."""

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlp_common.registry import ModelRegistry, PromotionConflict
from mlp_common.testing import s3_server

CONTENDERS = 6

# One contender: open the registry, download its version, wait for the start signal, then promote
# its version expecting production to be version 1. Exit 0 = won, 3 = refused (conflict).
CHILD = """
import sys, time
from pathlib import Path
from mlp_common.registry import ModelRegistry, PromotionConflict

root, version, go = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
registry = ModelRegistry(root)
registry.get("wine", version)
while not go.exists():
    time.sleep(0.0005)
try:
    registry.promote("wine", version, reason=f"contender {version}", expected=1)
except PromotionConflict as error:
    print(error)
    sys.exit(3)
"""


@pytest.fixture(params=["filesystem", "s3"])
def registry_root(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    monkeypatch.setenv("MLP_CACHE_DIR", str(tmp_path / "cache"))
    if request.param == "filesystem":
        yield str(tmp_path / "registry")
        return
    with s3_server("models", serialized=True):
        yield "s3://models/registry"


def model_dir(tmp_path: Path) -> Path:
    source = tmp_path / "src"
    source.mkdir(exist_ok=True)
    (source / "model.keras").write_bytes(b"keras")
    return source


def test_promotion_names_the_version_it_replaces(registry_root: str, tmp_path: Path) -> None:
    registry = ModelRegistry(registry_root)
    for _ in range(3):
        registry.register("wine", model_dir(tmp_path), {})
    registry.promote("wine", 1, expected=None, reason="first")
    with pytest.raises(PromotionConflict, match="expected no production version, found version"):
        registry.promote("wine", 2, expected=None)
    registry.promote("wine", 2, expected=1, reason="gate")
    with pytest.raises(
        PromotionConflict,
        match=r"production moved: expected version 1, found version 2; version 3 was not",
    ):
        registry.promote("wine", 3, expected=1)
    assert registry.pointer("wine", "production") == 2
    log = [(e["from"], e["to"], e["reason"]) for e in registry.promotions("wine")]
    assert log == [(None, 1, "first"), (1, 2, "gate")]


def test_concurrent_processes_exactly_one_promotion_wins(
    registry_root: str, tmp_path: Path
) -> None:
    registry = ModelRegistry(registry_root)
    for _ in range(CONTENDERS + 1):
        registry.register("wine", model_dir(tmp_path), {})
    registry.promote("wine", 1, expected=None, reason="first")
    go = tmp_path / "go"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, registry_root, str(version), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for version in range(2, CONTENDERS + 2)
    ]
    time.sleep(8)  # every contender imports, opens the registry and waits at the line
    go.touch()
    results = {}
    for version, process in zip(range(2, CONTENDERS + 2), processes, strict=True):
        out, err = process.communicate(timeout=120)
        assert process.returncode in (0, 3), err
        results[version] = (process.returncode, out)
    winners = [version for version, (code, _) in results.items() if code == 0]
    assert len(winners) == 1, results
    winner = winners[0]
    for version, (_code, out) in results.items():
        if version != winner:
            assert f"production moved: expected version 1, found version {winner}" in out
    fresh = ModelRegistry(registry_root)
    assert fresh.pointer("wine", "production") == winner
    assert [(e["from"], e["to"]) for e in fresh.promotions("wine")] == [(None, 1), (1, winner)]


# One registering writer: its own model bytes and metadata, started by the go file.
REGISTER = """
import sys, time
from pathlib import Path
from mlp_common.registry import ModelRegistry

root, writer, go, source = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
source.mkdir(parents=True)
(source / "model.keras").write_bytes(f"keras of writer {writer}".encode() * 2000)
(source / "params.json").write_text(writer)
registry = ModelRegistry(root)
registry.list_versions("wine")
while not go.exists():
    time.sleep(0.0005)
print(registry.register("wine", source, {"writer": writer}).version)
"""


def test_concurrent_registrations_get_distinct_complete_versions(
    registry_root: str, tmp_path: Path
) -> None:
    """Acceptance (issue 21): overlapping runs (recurring, drift, initial) register at once.
    Each gets its own version, and each version holds its own writer's files, whole."""
    go, writers = tmp_path / "go", 4
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                REGISTER,
                registry_root,
                str(i),
                str(go),
                str(tmp_path / f"s{i}"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(writers)
    ]
    time.sleep(8)
    go.touch()
    claimed = {}
    for i, process in enumerate(processes):
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        claimed[str(i)] = int(out)
    assert sorted(claimed.values()) == list(range(1, writers + 1))
    fresh = ModelRegistry(registry_root)
    assert fresh.list_versions("wine") == list(range(1, writers + 1))
    assert fresh.pointer("wine", "latest") == writers
    for writer, number in claimed.items():
        version = fresh.get("wine", number)
        assert version.metadata["writer"] == writer
        assert (version.path / "params.json").read_text() == writer
        assert version.keras_path.read_bytes() == f"keras of writer {writer}".encode() * 2000


def test_a_retried_promotion_succeeds_once(registry_root: str, tmp_path: Path) -> None:
    """Acceptance (issue 21): the promote step is retried after its write landed (a timeout on
    the response). The retry succeeds, and the log records one promotion."""
    registry = ModelRegistry(registry_root)
    for _ in range(2):
        registry.register("wine", model_dir(tmp_path), {})
    registry.promote("wine", 1, expected=None, reason="first")
    registry.promote("wine", 2, expected=1, reason="gate")
    again = registry.promote("wine", 2, expected=1, reason="gate")  # the retry
    assert again.version == 2 and registry.pointer("wine", "production") == 2
    assert [(e["from"], e["to"]) for e in registry.promotions("wine")] == [(None, 1), (1, 2)]
    with pytest.raises(PromotionConflict):
        registry.promote("wine", 1, expected=None)  # a stale decision still fails
