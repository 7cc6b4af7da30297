"""The documented choice between single-worker and multi-worker training (`train_workers`), as
compiled into the IR that the cluster runs (the compiled files are golden: test_compiled)."""

import yaml
from mlp_pipeline.compile import COMPILED_DIR, IR_FILE


def test_train_workers_is_a_pipeline_parameter_passed_to_train() -> None:
    spec, _ = yaml.safe_load_all((COMPILED_DIR / IR_FILE).read_text())
    parameter = spec["root"]["inputDefinitions"]["parameters"]["train_workers"]
    assert parameter == {"defaultValue": 1.0, "isOptional": True, "parameterType": "NUMBER_INTEGER"}
    train = spec["root"]["dag"]["tasks"]["train"]["inputs"]["parameters"]["workers"]
    assert train == {"componentInputParameter": "train_workers"}
    # The step's code chooses the strategy from it: the launcher for N > 1, main() for 1.
    code = " ".join(spec["deploymentSpec"]["executors"]["exec-train"]["container"]["command"])
    assert "if workers > 1:" in code and "LocalCluster(workers, argv, logs)" in code
