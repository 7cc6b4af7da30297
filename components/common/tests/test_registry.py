import json
import threading
from pathlib import Path

import pytest
from mlp_common.registry import (
    ModelRegistry,
    ModelVersion,
    PromotionRefused,
    RegistryError,
    check_promotion,
    promotion_problems,
)


def model_dir(tmp_path: Path, name: str = "src") -> Path:
    source = tmp_path / name
    (source / "saved_model").mkdir(parents=True, exist_ok=True)
    (source / "model.keras").write_bytes(b"keras")
    (source / "saved_model" / "saved_model.pb").write_bytes(b"pb")
    return source


def test_versions_count_up_with_parent_and_latest(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "registry")
    first = registry.register("wine", model_dir(tmp_path), {"params": {"a": 1}})
    second = registry.register("wine", model_dir(tmp_path), {"params": {"a": 2}})
    assert (first.version, first.parent) == (1, None)
    assert (second.version, second.parent) == (2, None)  # parent: production, none yet
    assert registry.list_versions("wine") == [1, 2]
    assert registry.latest("wine") == second
    assert registry.production("wine") is None
    assert second.metadata["params"] == {"a": 2}
    assert second.keras_path.read_bytes() == b"keras"
    assert (second.saved_model_path / "saved_model.pb").is_file()
    assert json.loads((second.path / "metadata.json").read_text())["version"] == 2
    registry.promote("wine", 1)
    assert registry.register("wine", model_dir(tmp_path), {}).parent == 1
    assert registry.register("wine", model_dir(tmp_path), {}, parent=2).parent == 2


def test_promote_moves_production_and_logs(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    registry.register("wine", model_dir(tmp_path), {}, promote=True, promote_reason="first")
    registry.register("wine", model_dir(tmp_path), {})
    assert registry.pointer("wine", "production") == 1
    registry.promote("wine", "latest", reason="manual")
    assert registry.get("wine", "production").version == 2
    log = registry.promotions("wine")
    assert [(e["from"], e["to"], e["reason"]) for e in log] == [
        (None, 1, "first"),
        (1, 2, "manual"),
    ]


def test_unknown_references_are_clear(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    with pytest.raises(RegistryError, match="model 'wine' has no production version"):
        registry.get("wine", "production")
    registry.register("wine", model_dir(tmp_path), {})
    with pytest.raises(RegistryError, match="model 'wine' has no version 9"):
        registry.get("wine", 9)
    with pytest.raises(RegistryError, match="DNS-1123"):
        registry.list_versions("Wine_Model")
    with pytest.raises(RegistryError, match="no model.keras"):
        registry.register("wine", tmp_path / "nothing", {})


def test_crash_while_copying_leaves_no_half_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = ModelRegistry(tmp_path / "registry")
    registry.register("wine", model_dir(tmp_path), {})

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("mlp_common.registry.shutil.copytree", crash)
    with pytest.raises(OSError, match="disk full"):
        registry.register("wine", model_dir(tmp_path, "other"), {})
    versions_dir = tmp_path / "registry" / "models" / "wine" / "versions"
    assert sorted(p.name for p in versions_dir.iterdir()) == ["1"]
    assert registry.pointer("wine", "latest") == 1


def test_concurrent_writers_get_distinct_versions(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "registry")
    sources = [model_dir(tmp_path, f"src{i}") for i in range(6)]
    results: list[int] = []
    threads = [
        threading.Thread(
            target=lambda s=s: results.append(registry.register("wine", s, {}).version)
        )
        for s in sources
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [1, 2, 3, 4, 5, 6]  # distinct and without gaps
    assert registry.list_versions("wine") == [1, 2, 3, 4, 5, 6]
    assert registry.pointer("wine", "latest") == 6


def test_object_store_registry_round_trip(tmp_path: Path, s3: str) -> None:
    registry = ModelRegistry("s3://models/registry")
    registry.register("wine", model_dir(tmp_path), {"params": {"seed": 1}})
    second = registry.register("wine", model_dir(tmp_path), {}, promote=True)
    assert registry.list_models() == ["wine"]
    assert registry.list_versions("wine") == [1, 2]
    assert second.parent is None
    artifacts = second.metadata["artifacts"]
    assert (
        artifacts.startswith("artifacts/")
        and artifacts != registry.get("wine", 1).metadata["artifacts"]
    )
    assert second.uri == "s3://models/registry/models/wine/versions/2"
    production = ModelRegistry("s3://models/registry").production("wine")
    assert production is not None and production.version == 2
    assert production.keras_path.read_bytes() == b"keras"
    assert (production.saved_model_path / "saved_model.pb").is_file()
    assert registry.get("wine", 1).metadata["params"] == {"seed": 1}
    assert registry.read_version_file("wine", 2, "model.keras") == "keras"
    assert registry.read_version_file("wine", 2, "statistics.json") is None


def test_object_store_version_without_metadata_is_invisible(tmp_path: Path, s3: str) -> None:
    from mlp_common.storage import filesystem

    registry = ModelRegistry("s3://models/registry")
    registry.register("wine", model_dir(tmp_path), {})
    fs, _ = filesystem("s3://models")
    fs.pipe_file("models/registry/models/wine/versions/2/model.keras", b"half upload")
    assert registry.list_versions("wine") == [1]
    assert registry.register("wine", model_dir(tmp_path), {}).version == 2


def gated(tmp_path: Path, decision: str, **metrics: float) -> ModelVersion:
    gate = {"decision": decision, "verdict": f"{decision} (test)", "reason": "the numbers"}
    return ModelRegistry(tmp_path / "registry").register(
        "wine", model_dir(tmp_path), {"gate": gate, "metrics": metrics}
    )


def test_promotion_check_needs_a_passed_gate_and_the_floors(tmp_path: Path) -> None:
    passed = gated(tmp_path, "promote", test_accuracy=0.96)
    assert promotion_problems(passed) == []
    assert promotion_problems(passed, {"test_accuracy": 0.95}) == []
    assert promotion_problems(passed, {"test_accuracy": 0.97, "test_f1_macro": 0.9}) == [
        "test_accuracy 0.9600 is below the floor 0.9700",
        "metric 'test_f1_macro' is not recorded (floor 0.9)",
    ]
    refused = gated(tmp_path, "refused", test_accuracy=0.99)
    assert promotion_problems(refused) == ["its gate did not pass: refused (test) (the numbers)"]
    with pytest.raises(PromotionRefused, match=r"'wine' version 2 may not be promoted: its gate"):
        check_promotion(refused)
    ungated = ModelRegistry(tmp_path / "registry").register("wine", model_dir(tmp_path), {})
    assert promotion_problems(ungated) == ["its gate did not pass: no gate decision recorded"]
