from pathlib import Path

import yaml
from kfp import components
from mlp_pipeline.compile import COMPILED_DIR, HEADER, IR_FILE, K8S_FILE, render, stale, write
from mlp_pipeline.images import step_image


def test_compiled_files_are_fresh() -> None:
    assert stale() == [], "run `make pipeline-compile` (mlp-pipeline compile)"


def test_compilation_is_byte_identical(tmp_path: Path) -> None:
    write(tmp_path / "compiled")
    first = {p.name: p.read_bytes() for p in (tmp_path / "compiled").iterdir()}
    assert {name: text.encode() for name, text in render().items()} == first
    assert stale(tmp_path / "compiled") == []
    (tmp_path / "compiled" / "stray.yaml").write_text("x")
    (tmp_path / "compiled" / IR_FILE).write_text("changed")
    assert stale(tmp_path / "compiled") == [f"changed: {IR_FILE}", "extra: stray.yaml"]


def test_ir_loads_back_with_the_kfp_sdk() -> None:
    text = (COMPILED_DIR / IR_FILE).read_text()
    assert text.startswith(HEADER) and "DO NOT EDIT." in HEADER
    pipeline = components.load_component_from_file(str(COMPILED_DIR / IR_FILE))
    assert pipeline.name == "mlp-training"
    assert {"source", "registry_uri", "learning_rate", "margin"} <= set(
        pipeline.component_spec.inputs
    )


def test_ir_structure_retries_caching_gate_and_images() -> None:
    spec, platform = yaml.safe_load_all((COMPILED_DIR / IR_FILE).read_text())
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == {
        "ingest", "validate", "preprocess", "train", "evaluate", "register", "condition-1",
    }  # fmt: skip
    for name in ("ingest", "register"):
        assert tasks[name]["retryPolicy"]["maxRetryCount"] == 2
    gate = tasks["condition-1"]
    assert gate["triggerPolicy"]["condition"] == (
        "inputs.parameter_values['pipelinechannel--evaluate-Output'] == 'promote'"
    )
    promote = spec["components"]["comp-condition-1"]["dag"]["tasks"]["promote"]
    assert promote["retryPolicy"]["maxRetryCount"] == 2
    assert tasks["train"]["cachingOptions"] == {"enableCache": True}
    for name in ("ingest", "validate", "evaluate", "register"):
        assert tasks[name]["cachingOptions"] == {}, name
    executors = spec["deploymentSpec"]["executors"]
    for step in ("ingest", "validate", "preprocess", "train", "evaluate", "register", "promote"):
        container = executors[f"exec-{step}"]["container"]
        assert container["image"] == step_image(step)
        assert "pip install" not in " ".join(container["command"])  # install_kfp_package=False
        access = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"][f"exec-{step}"]
        assert access["configMapAsEnv"][0]["configMapName"] == "mlp-object-store"
        assert access["secretAsEnv"][0]["secretName"] == "mlpipeline-minio-artifact"
    assert spec["root"]["inputDefinitions"]["parameters"]["registry_uri"]["defaultValue"] == (
        "s3://mlp-models/registry"
    )


def test_kubernetes_objects_carry_the_same_spec() -> None:
    text = (COMPILED_DIR / K8S_FILE).read_text()
    assert text.startswith(HEADER)
    pipeline, version = yaml.safe_load_all(text)
    assert (pipeline["apiVersion"], pipeline["kind"]) == (
        "pipelines.kubeflow.org/v2beta1",
        "Pipeline",
    )
    assert version["kind"] == "PipelineVersion"
    assert version["spec"]["pipelineName"] == pipeline["metadata"]["name"] == "mlp-training"
    ir, platform = yaml.safe_load_all((COMPILED_DIR / IR_FILE).read_text())
    assert version["spec"]["pipelineSpec"] == ir
    assert version["spec"]["platformSpec"] == platform
