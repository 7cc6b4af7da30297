"""The documented choice between single-worker and multi-worker training (`train_workers`), as
compiled into the IR that the cluster runs (the compiled files are golden: test_compiled)."""

import yaml
from mlp_pipeline.compile import COMPILED_DIR, IR_FILE


def test_train_workers_is_a_pipeline_parameter_passed_to_train() -> None:
    spec, _ = yaml.safe_load_all((COMPILED_DIR / IR_FILE).read_text())
    parameter = spec["root"]["inputDefinitions"]["parameters"]["train_workers"]
    assert parameter == {"defaultValue": 1.0, "isOptional": True, "parameterType": "NUMBER_INTEGER"}
    # train runs inside the gate's condition branch: a sub-DAG, which receives the pipeline
    # parameter under its own input name.
    [(component, train)] = [
        (name, c["dag"]["tasks"]["train"])
        for name, c in spec["components"].items()
        if "train" in c.get("dag", {}).get("tasks", {})
    ]
    workers = train["inputs"]["parameters"]["workers"]["componentInputParameter"]
    assert workers.endswith("train_workers"), workers
    branch = spec["components"][component]["inputDefinitions"]["parameters"]
    assert workers in branch
    # The step's code chooses the strategy from it: the launcher for N > 1, main() for 1.
    code = " ".join(spec["deploymentSpec"]["executors"]["exec-train"]["container"]["command"])
    assert "if workers > 1:" in code and "LocalCluster(workers, argv, logs)" in code
