import json
from pathlib import Path

import yaml
from kfp import components
from mlp_pipeline.compile import COMPILED_DIR, HEADER, IR_FILE, K8S_FILE, render, stale, write
from mlp_pipeline.images import spec_step_images


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
    assert {"source", "registry_uri", "learning_rate", "alpha", "min_effect", "id_column"} <= set(
        pipeline.component_spec.inputs
    )


def test_ir_structure_retries_caching_gate_and_images() -> None:
    spec, platform = yaml.safe_load_all((COMPILED_DIR / IR_FILE).read_text())
    components = spec["components"]
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == {"ingest", "snapshot", "validate", "plan", "condition-branches-1"}
    branches = components["comp-condition-branches-1"]["dag"]["tasks"]
    assert branches["condition-3"]["triggerPolicy"]["condition"] == (
        "inputs.parameter_values['pipelinechannel--plan-Output'] == 'train'"
    )
    assert branches["condition-4"]["triggerPolicy"]["condition"] == (
        "!(inputs.parameter_values['pipelinechannel--plan-Output'] == 'train')"
    )
    trained = components["comp-condition-3"]["dag"]["tasks"]
    assert set(trained) == {"preprocess", "train", "evaluate", "register", "condition-2"}
    assert set(components["comp-condition-4"]["dag"]["tasks"]) == {"reuse"}
    assert trained["condition-2"]["triggerPolicy"]["condition"] == (
        "inputs.parameter_values['pipelinechannel--evaluate-Output'] == 'promote'"
    )
    promote = components["comp-condition-2"]["dag"]["tasks"]["promote"]
    for task in (tasks["ingest"], trained["register"], promote):
        assert task["retryPolicy"]["maxRetryCount"] == 2
    # the content-addressed snapshot and everything pure after it may be cached; nothing else
    for task in (tasks["snapshot"], trained["preprocess"], trained["train"]):
        assert task["cachingOptions"] == {"enableCache": True}
    for task in (tasks["ingest"], tasks["validate"], tasks["plan"], trained["evaluate"]):
        assert task["cachingOptions"] == {}
    assert tasks["snapshot"]["inputs"]["parameters"]["snapshot_uri"]["taskOutputParameter"] == {
        "outputParameterKey": "Output",
        "producerTask": "ingest",
    }
    executors = spec["deploymentSpec"]["executors"]
    steps = ("ingest", "snapshot", "validate", "plan", "preprocess", "train", "evaluate")
    for step in (*steps, "register", "promote", "reuse"):
        container = executors[f"exec-{step}"]["container"]
        assert container["image"] == spec_step_images("mlp-training")[step]
        assert "pip install" not in " ".join(container["command"])  # install_kfp_package=False
        access = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"][f"exec-{step}"]
        assert access["configMapAsEnv"][0]["configMapName"] == "mlp-object-store"
        assert access["secretAsEnv"][0]["secretName"] == "mlpipeline-minio-artifact"
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    assert parameters["registry_uri"]["defaultValue"] == "s3://mlp-models/registry"
    assert parameters["snapshot_root"]["defaultValue"] == "s3://mlp-models/datasets"
    assert parameters["source"]["defaultValue"] == "sklearn:digits"
    images = trained["register"]["inputs"]["parameters"]["images"]["runtimeValue"]["constant"]
    assert json.loads(images)["train"] == spec_step_images("mlp-training")["train"]


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
