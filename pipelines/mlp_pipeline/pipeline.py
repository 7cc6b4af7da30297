"""The training pipeline (KFP v2): ingest -> validate -> preprocess -> train -> evaluate ->
register -> [gate: dsl.If decision == "promote"] -> promote.

Each step is a lightweight component whose body only imports its component package and calls the
same ``main(argv)`` as the CLI and the container, so the local run, the container and the pipeline
execute one code path. Images come from :func:`mlp_pipeline.images.step_image`.

Retries: ingest (sources over the network: S3, SQL servers), register and promote (shared
storage) retry transient failures. Caching: preprocess and train are pure functions of their
inputs and may be cached; ingest (the source may change), validate and evaluate (they read the
current production version), register and promote (side effects) never are.

Promotion moves the registry's ``production`` pointer; the model server follows that pointer, so
promotion is the deployment gate.
"""

from kfp import dsl, kubernetes
from kfp.dsl import (
    Artifact,
    ClassificationMetrics,
    Dataset,
    Input,
    Metrics,
    Model,
    Output,
)

from mlp_pipeline.cluster import (
    MODEL_REGISTRY,
    OBJECT_STORE_CONFIG_KEYS,
    OBJECT_STORE_CONFIG_MAP,
    OBJECT_STORE_SECRET,
    OBJECT_STORE_SECRET_KEYS,
)
from mlp_pipeline.images import step_image

PIPELINE_NAME = "mlp-training"
DEFAULT_REGISTRY = MODEL_REGISTRY
RETRY = {"num_retries": 2, "backoff_duration": "2s", "backoff_factor": 2.0}


def _object_store_access(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """Endpoint and credentials for s3:// sources and the registry (ignored by kfp.local)."""
    kubernetes.use_config_map_as_env(
        task,
        config_map_name=OBJECT_STORE_CONFIG_MAP,
        config_map_key_to_env=OBJECT_STORE_CONFIG_KEYS,
    )
    kubernetes.use_secret_as_env(
        task, secret_name=OBJECT_STORE_SECRET, secret_key_to_env=OBJECT_STORE_SECRET_KEYS
    )
    return task


@dsl.component(base_image=step_image("ingest"), install_kfp_package=False)
def ingest(
    source: str, query: str, target: str, dataset_name: str, dataset: Output[Dataset]
) -> None:
    """Read the source into a versioned dataset (mlp-ingest)."""
    from mlp_ingest.cli import main

    argv = ["--source", source, "--name", dataset_name, "--output", dataset.path]
    argv += ["--query", query] if query else []
    argv += ["--target", target] if target else []
    if main(argv) != 0:
        raise RuntimeError("ingest failed (see the message above)")


@dsl.component(base_image=step_image("validate"), install_kfp_package=False)
def validate(
    dataset: Input[Dataset],
    schema: str,
    registry_uri: str,
    model_name: str,
    report: Output[Artifact],
) -> None:
    """Check the declared schema; skew against the production model's training statistics."""
    from mlp_common.registry import ModelRegistry
    from mlp_validate.cli import main

    argv = ["--dataset", dataset.path, "--schema", schema, "--output", report.path]
    production = ModelRegistry(registry_uri).production(model_name)
    if production is not None and (production.path / "statistics.json").is_file():
        argv += ["--reference-stats", str(production.path / "statistics.json")]
    if main(argv) != 0:
        raise RuntimeError("validate: the data broke the schema (report above)")


@dsl.component(base_image=step_image("preprocess"), install_kfp_package=False)
def preprocess(
    dataset: Input[Dataset], test_size: float, val_size: float, seed: int, data: Output[Dataset]
) -> None:
    """Stratified split and feature description (mlp-preprocess)."""
    from mlp_preprocess.cli import main

    argv = ["--dataset", dataset.path, "--output", data.path, "--seed", str(seed)]
    argv += ["--test-size", str(test_size), "--val-size", str(val_size)]
    if main(argv) != 0:
        raise RuntimeError("preprocess failed (see the message above)")


@dsl.component(base_image=step_image("train"), install_kfp_package=False)
def train(
    data: Input[Dataset],
    learning_rate: float,
    hidden_units: int,
    dropout: float,
    epochs: int,
    batch_size: int,
    seed: int,
    model: Output[Model],
    metrics: Output[Metrics],
    workers: int = 1,
) -> None:
    """Train the Keras model and the scikit-learn baseline (mlp-train); with workers > 1, as
    that many MultiWorkerMirroredStrategy workers in this pod (mlp_train.launch)."""
    import json
    import os

    from mlp_train.cli import main

    argv = ["--data", data.path, "--output", model.path, "--seed", str(seed)]
    argv += ["--learning-rate", str(learning_rate), "--hidden-units", str(hidden_units)]
    argv += ["--dropout", str(dropout), "--epochs", str(epochs), "--batch-size", str(batch_size)]
    if workers > 1:
        import tempfile

        from mlp_train.launch import LocalCluster

        logs = tempfile.mkdtemp(prefix="train-workers-")
        if not LocalCluster(workers, argv, logs).run(max_restarts=2)["succeeded"]:
            raise RuntimeError(f"train on {workers} workers failed (logs in {logs})")
    elif main(argv) != 0:
        raise RuntimeError("train failed (see the message above)")
    with open(os.path.join(model.path, "metrics.json"), encoding="utf-8") as handle:
        result = json.load(handle)
    for name in ("val_accuracy", "val_loss", "baseline_val_accuracy", "examples_per_second"):
        metrics.log_metric(name, result[name])
    model.metadata["framework"] = "tensorflow"


@dsl.component(base_image=step_image("evaluate"), install_kfp_package=False)
def evaluate(
    model: Input[Model],
    data: Input[Dataset],
    registry_uri: str,
    model_name: str,
    gate_metric: str,
    margin: float,
    min_score: float,
    evaluation: Output[Artifact],
    metrics: Output[Metrics],
    confusion: Output[ClassificationMetrics],
) -> str:
    """Test-split metrics and the gate against the production model (mlp-evaluate).
    Returns the gate decision, ``promote`` or ``candidate`` (a single ``Output`` parameter:
    kfp.local resolves only those in ``dsl.If`` conditions)."""
    import json
    import os

    from mlp_common.registry import ModelRegistry
    from mlp_evaluate.cli import main

    argv = ["--model", model.path, "--data", data.path, "--output", evaluation.path]
    argv += ["--metric", gate_metric, "--margin", str(margin), "--min-score", str(min_score)]
    production = ModelRegistry(registry_uri).production(model_name)
    if production is not None:
        argv += ["--production-model", str(production.path)]
    if main(argv) != 0:
        raise RuntimeError("evaluate failed (see the message above)")
    with open(os.path.join(evaluation.path, "evaluation.json"), encoding="utf-8") as handle:
        result = json.load(handle)
    with open(os.path.join(evaluation.path, "gate.json"), encoding="utf-8") as handle:
        gate = json.load(handle)
    for name in ("accuracy", "f1_macro", "f1_weighted"):
        metrics.log_metric(name, result[name])
    confusion.log_confusion_matrix(result["classes"], result["confusion_matrix"])
    return str(gate["decision"])


@dsl.component(base_image=step_image("register"), install_kfp_package=False)
def register(
    model: Input[Model],
    evaluation: Input[Artifact],
    dataset: Input[Dataset],
    report: Input[Artifact],
    registry_uri: str,
    model_name: str,
    run_id: str,
) -> int:
    """Register the model as the next version (a candidate until promoted)."""
    import os
    import tempfile

    from mlp_register.cli import main

    version_file = os.path.join(tempfile.mkdtemp(prefix="register-"), "version")
    argv = ["--registry", registry_uri, "--name", model_name, "--model", model.path]
    argv += ["--evaluation", evaluation.path, "--dataset", dataset.path, "--run-id", run_id]
    argv += ["--statistics", os.path.join(report.path, "statistics.json")]
    if main([*argv, "--version-file", version_file]) != 0:
        raise RuntimeError("register failed (see the message above)")
    with open(version_file, encoding="utf-8") as handle:
        return int(handle.read())


@dsl.component(base_image=step_image("promote"), install_kfp_package=False)
def promote(registry_uri: str, model_name: str, version: int) -> str:
    """Point the registry's production pointer at the gated version (mlp-registry promote)."""
    from mlp_register.registry_cli import main

    argv = ["--registry", registry_uri, "promote", model_name, str(version)]
    if main([*argv, "--reason", "pipeline gate passed"]) != 0:
        raise RuntimeError("promote failed (see the message above)")
    return f"{model_name}:{version}"


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="Ingest, validate, preprocess, train (TensorFlow), evaluate, gate, register and "
    "promote a classifier.",
)
def training_pipeline(
    source: str = "sklearn:wine",
    query: str = "",
    target: str = "",
    dataset_name: str = "wine",
    schema: str = "embedded:wine",
    model_name: str = "wine",
    registry_uri: str = DEFAULT_REGISTRY,
    test_size: float = 0.2,
    val_size: float = 0.2,
    seed: int = 42,
    learning_rate: float = 0.01,
    hidden_units: int = 32,
    dropout: float = 0.1,
    epochs: int = 60,
    batch_size: int = 16,
    train_workers: int = 1,
    gate_metric: str = "accuracy",
    margin: float = 0.0,
    min_score: float = 0.8,
) -> int:
    ingest_task = ingest(source=source, query=query, target=target, dataset_name=dataset_name)
    ingest_task.set_retry(**RETRY).set_caching_options(enable_caching=False)
    ingest_task.set_display_name("ingest")

    validate_task = validate(
        dataset=ingest_task.outputs["dataset"],
        schema=schema,
        registry_uri=registry_uri,
        model_name=model_name,
    )
    validate_task.set_caching_options(enable_caching=False).set_display_name("validate")

    preprocess_task = preprocess(
        dataset=ingest_task.outputs["dataset"], test_size=test_size, val_size=val_size, seed=seed
    )
    preprocess_task.after(validate_task).set_display_name("preprocess")

    train_task = train(
        data=preprocess_task.outputs["data"],
        learning_rate=learning_rate,
        hidden_units=hidden_units,
        dropout=dropout,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        workers=train_workers,
    )
    train_task.set_display_name("train")

    evaluate_task = evaluate(
        model=train_task.outputs["model"],
        data=preprocess_task.outputs["data"],
        registry_uri=registry_uri,
        model_name=model_name,
        gate_metric=gate_metric,
        margin=margin,
        min_score=min_score,
    )
    evaluate_task.set_caching_options(enable_caching=False).set_display_name("evaluate")

    register_task = register(
        model=train_task.outputs["model"],
        evaluation=evaluate_task.outputs["evaluation"],
        dataset=ingest_task.outputs["dataset"],
        report=validate_task.outputs["report"],
        registry_uri=registry_uri,
        model_name=model_name,
        run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
    )
    register_task.set_retry(**RETRY).set_caching_options(enable_caching=False)
    register_task.set_display_name("register")

    with dsl.If(evaluate_task.outputs["Output"] == "promote", name="gate-passed"):
        promote_task = promote(
            registry_uri=registry_uri, model_name=model_name, version=register_task.output
        )
        promote_task.set_retry(**RETRY).set_caching_options(enable_caching=False)
        promote_task.set_display_name("promote")

    for task in (ingest_task, validate_task, preprocess_task, train_task, evaluate_task):
        _object_store_access(task)
    _object_store_access(register_task)
    _object_store_access(promote_task)

    return register_task.output
