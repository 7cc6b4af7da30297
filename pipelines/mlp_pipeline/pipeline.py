"""The training pipeline (KFP v2)::

    ingest -> snapshot -> validate -> plan -+- [train]  preprocess -> train -> evaluate -> register
                                            |                                  -> [promote] promote
                                            +- [else]   reuse

Each step is a lightweight component whose body only imports its component package and calls the
same ``main(argv)`` (or core function) as the CLI and the container, so the local run, the
container and the pipeline execute one code path. Each step's image comes from platform.yaml
when the pipeline is built (:func:`build_pipeline`, given
:func:`mlp_pipeline.images.spec_step_images`): the step functions and the pipeline's signature
below need no image, so the pipeline image, which has no platform.yaml, imports this module to
check run parameters.

No retraining when nothing changed, in two layers:

- KFP's cache (on a cluster). ``ingest`` is never cached (the source may have changed) and outputs
  only the *URI* of an immutable, content-addressed snapshot (``<snapshot_root>/<name>/<hash>/``).
  ``snapshot`` turns that URI into the Dataset artifact and *is* cached: its cache key is the URI,
  i.e. the content, so for unchanged data it hits and hands every later step the very same
  artifact, and ``preprocess`` and ``train`` hit too.
- The registry (everywhere, including kfp.local, which ignores caching). ``plan`` computes the
  training key (data content hash, params, code version); if a registered version has it, the
  run takes the ``reuse`` branch and says which version it reused. ``force_retrain`` trains
  anyway.

Retries: ingest (sources over the network: S3, SQL servers), register and promote (shared
storage) retry transient failures. Caching: snapshot, preprocess and train are pure functions of
their inputs and may be cached; ingest, validate, plan and evaluate (they read the source or the
registry), register, promote and reuse (side effects or registry reads) never are.

Promotion moves the registry's ``production`` pointer by compare-and-swap against the production
version the gate compared with; the model server follows that pointer, so promotion is the
deployment gate.
"""

import json
import types
from collections.abc import Mapping

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
    DATASET_SNAPSHOTS,
    MODEL_REGISTRY,
    OBJECT_STORE_CONFIG_KEYS,
    OBJECT_STORE_CONFIG_MAP,
    OBJECT_STORE_SECRET,
    OBJECT_STORE_SECRET_KEYS,
)
from mlp_pipeline.images import STEP_COMPONENT

PIPELINE_NAME = "mlp-training"
DEFAULT_REGISTRY = MODEL_REGISTRY
DEFAULT_SNAPSHOTS = DATASET_SNAPSHOTS
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


def ingest(source: str, query: str, target: str, dataset_name: str, snapshot_root: str) -> str:
    """Read the source into an immutable snapshot (mlp-ingest); returns the snapshot URI, which
    depends only on the data's content."""
    import os
    import tempfile

    from mlp_ingest.cli import main

    uri_file = os.path.join(tempfile.mkdtemp(prefix="ingest-"), "uri")
    argv = ["--source", source, "--name", dataset_name, "--snapshot-root", snapshot_root]
    argv += ["--query", query] if query else []
    argv += ["--target", target] if target else []
    if main([*argv, "--uri-file", uri_file]) != 0:
        raise RuntimeError("ingest failed (see the message above)")
    with open(uri_file, encoding="utf-8") as handle:
        return handle.read()


def snapshot(snapshot_uri: str, dataset: Output[Dataset]) -> None:
    """The snapshot as the run's Dataset artifact, checked against its recorded hashes. Cached:
    its only input is the content-addressed URI."""
    from mlp_common.dataset import materialize_snapshot
    from mlp_common.step import run_step

    def body() -> int:
        info = materialize_snapshot(snapshot_uri, dataset.path)
        dataset.metadata.update({"content_hash": info.content_hash, "uri": snapshot_uri})
        return 0

    if run_step("snapshot", body) != 0:
        raise RuntimeError("snapshot failed (see the message above)")


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


def plan(
    snapshot_uri: str,
    registry_uri: str,
    model_name: str,
    force_retrain: bool,
    test_size: float,
    val_size: float,
    id_column: str,
    seed: int,
    learning_rate: float,
    hidden_units: int,
    dropout: float,
    epochs: int,
    batch_size: int,
    workers: int,
    plan: Output[Artifact],
) -> str:
    """``train``, or ``reuse`` when a registered version has this run's training key."""
    import contextlib
    import io
    import json
    import os

    from mlp_register.plan import main

    params = {
        "split": {"test_size": test_size, "val_size": val_size, "id_column": id_column},
        "train": {
            "learning_rate": learning_rate,
            "hidden_units": hidden_units,
            "dropout": dropout,
            "epochs": epochs,
            "batch_size": batch_size,
            "seed": seed,
            "workers": workers,
            "strategy": "MultiWorkerMirroredStrategy" if workers > 1 else "default",
        },
    }
    os.makedirs(plan.path, exist_ok=True)
    argv = ["--registry", registry_uri, "--name", model_name, "--snapshot", snapshot_uri]
    argv += ["--params", json.dumps(params, sort_keys=True)]
    argv += ["--output", os.path.join(plan.path, "plan.json")]
    argv += ["--force"] if force_retrain else []
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(argv)
    if code != 0:
        raise RuntimeError("plan failed (see the message above)")
    return printed.getvalue().strip()


def reuse(registry_uri: str, model_name: str, plan: Input[Artifact]) -> int:
    """The version this run reuses instead of training (nothing changed since it was trained)."""
    import json
    import os

    from mlp_common.registry import ModelRegistry
    from mlp_common.step import run_step

    found: dict[str, int] = {}

    def body() -> int:
        with open(os.path.join(plan.path, "plan.json"), encoding="utf-8") as handle:
            decided = json.load(handle)
        version = ModelRegistry(registry_uri).get(model_name, int(decided["version"]))
        print(f"reuse: {decided['reason']}")
        found["version"] = version.version
        return 0

    if run_step("reuse", body) != 0:
        raise RuntimeError("reuse failed (see the message above)")
    return found["version"]


def preprocess(
    dataset: Input[Dataset],
    test_size: float,
    val_size: float,
    id_column: str,
    seed: int,
    data: Output[Dataset],
) -> None:
    """Split by a stable hash of each row's key, and the feature description (mlp-preprocess)."""
    from mlp_preprocess.cli import main

    argv = ["--dataset", dataset.path, "--output", data.path, "--seed", str(seed)]
    argv += ["--test-size", str(test_size), "--val-size", str(val_size)]
    argv += ["--id-column", id_column] if id_column else []
    if main(argv) != 0:
        raise RuntimeError("preprocess failed (see the message above)")


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

    argv = ["--data", data.path, "--data-uri", data.uri, "--output", model.path]
    argv += ["--seed", str(seed), "--learning-rate", str(learning_rate)]
    argv += ["--hidden-units", str(hidden_units)]
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


def evaluate(
    model: Input[Model],
    data: Input[Dataset],
    registry_uri: str,
    model_name: str,
    gate_metric: str,
    alpha: float,
    min_effect: float,
    min_score: float,
    schema_change: bool,
    evaluation: Output[Artifact],
    metrics: Output[Metrics],
    confusion: Output[ClassificationMetrics],
) -> str:
    """Test-split metrics and the gate against the production model and the baseline
    (mlp-evaluate). Returns the gate decision, ``promote``, ``candidate`` or ``refused`` (a single
    ``Output`` parameter: kfp.local resolves only those in ``dsl.If`` conditions)."""
    import json
    import os

    from mlp_common.registry import ModelRegistry
    from mlp_evaluate.cli import main

    argv = ["--model", model.path, "--data", data.path, "--output", evaluation.path]
    argv += ["--metric", gate_metric, "--alpha", str(alpha), "--min-effect", str(min_effect)]
    argv += ["--min-score", str(min_score)] + (["--schema-change"] if schema_change else [])
    production = ModelRegistry(registry_uri).production(model_name)
    if production is not None:
        argv += ["--production-model", str(production.path)]
        argv += ["--production-version", str(production.version)]
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


def register(
    model: Input[Model],
    evaluation: Input[Artifact],
    dataset: Input[Dataset],
    report: Input[Artifact],
    plan: Input[Artifact],
    registry_uri: str,
    model_name: str,
    run_id: str,
    source: str,
    query: str,
    images: str,
) -> int:
    """Register the model as the next version (a candidate until promoted), with its lineage."""
    import json
    import os
    import tempfile

    from mlp_register.cli import main

    with open(os.path.join(plan.path, "plan.json"), encoding="utf-8") as handle:
        key = json.load(handle)["training_key"]
    version_file = os.path.join(tempfile.mkdtemp(prefix="register-"), "version")
    argv = ["--registry", registry_uri, "--name", model_name, "--model", model.path]
    argv += ["--evaluation", evaluation.path, "--dataset", dataset.path, "--run-id", run_id]
    argv += ["--statistics", os.path.join(report.path, "statistics.json")]
    argv += ["--source", source, "--query", query, "--images", images, "--training-key", key]
    if main([*argv, "--version-file", version_file]) != 0:
        raise RuntimeError("register failed (see the message above)")
    with open(version_file, encoding="utf-8") as handle:
        return int(handle.read())


def promote(registry_uri: str, model_name: str, version: int, evaluation: Input[Artifact]) -> str:
    """Point the registry's production pointer at the gated version (mlp-registry promote), by
    compare-and-swap: refused if production is no longer the version the gate compared with."""
    import json
    import os

    from mlp_register.registry_cli import main

    with open(os.path.join(evaluation.path, "gate.json"), encoding="utf-8") as handle:
        gate = json.load(handle)
    expected = gate.get("production_version")
    argv = ["--registry", registry_uri, "promote", model_name, str(version)]
    argv += ["--expect", "none" if expected is None else str(expected)]
    if main([*argv, "--reason", f"pipeline gate: {gate.get('reason', '')}"]) != 0:
        raise RuntimeError("promote failed (see the message above)")
    return f"{model_name}:{version}"


DESCRIPTION = (
    "Ingest a content-addressed snapshot, validate, then train (TensorFlow), evaluate, "
    "gate, register and promote a classifier, or reuse the version trained on the same inputs."
)


def training_pipeline(  # run only through build_pipeline, which binds its step names
    source: str = "sklearn:digits",
    query: str = "",
    target: str = "",
    dataset_name: str = "digits",
    schema: str = "embedded:digits",
    model_name: str = "digits",
    registry_uri: str = DEFAULT_REGISTRY,
    snapshot_root: str = DEFAULT_SNAPSHOTS,
    force_retrain: bool = False,
    test_size: float = 0.2,
    val_size: float = 0.2,
    id_column: str = "",
    seed: int = 42,
    learning_rate: float = 0.005,
    hidden_units: int = 128,
    dropout: float = 0.1,
    epochs: int = 60,
    batch_size: int = 16,
    train_workers: int = 1,
    gate_metric: str = "accuracy",
    alpha: float = 0.05,
    min_effect: float = 0.02,
    min_score: float = 0.8,
    schema_change: bool = False,
) -> int:
    ingest_task = ingest(
        source=source,
        query=query,
        target=target,
        dataset_name=dataset_name,
        snapshot_root=snapshot_root,
    )
    ingest_task.set_retry(**RETRY).set_caching_options(enable_caching=False)
    ingest_task.set_display_name("ingest")

    snapshot_task = snapshot(snapshot_uri=ingest_task.output)
    snapshot_task.set_caching_options(enable_caching=True).set_display_name("snapshot")
    dataset = snapshot_task.outputs["dataset"]

    validate_task = validate(
        dataset=dataset, schema=schema, registry_uri=registry_uri, model_name=model_name
    )
    validate_task.set_caching_options(enable_caching=False).set_display_name("validate")

    plan_task = plan(
        snapshot_uri=ingest_task.output,
        registry_uri=registry_uri,
        model_name=model_name,
        force_retrain=force_retrain,
        test_size=test_size,
        val_size=val_size,
        id_column=id_column,
        seed=seed,
        learning_rate=learning_rate,
        hidden_units=hidden_units,
        dropout=dropout,
        epochs=epochs,
        batch_size=batch_size,
        workers=train_workers,
    )
    plan_task.after(validate_task)
    plan_task.set_caching_options(enable_caching=False).set_display_name("plan")
    tasks = [ingest_task, snapshot_task, validate_task, plan_task]

    with dsl.If(plan_task.outputs["Output"] == "train", name="train-needed"):
        preprocess_task = preprocess(
            dataset=dataset,
            test_size=test_size,
            val_size=val_size,
            id_column=id_column,
            seed=seed,
        )
        preprocess_task.set_display_name("preprocess")

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
            alpha=alpha,
            min_effect=min_effect,
            min_score=min_score,
            schema_change=schema_change,
        )
        evaluate_task.set_caching_options(enable_caching=False).set_display_name("evaluate")

        register_task = register(
            model=train_task.outputs["model"],
            evaluation=evaluate_task.outputs["evaluation"],
            dataset=dataset,
            report=validate_task.outputs["report"],
            plan=plan_task.outputs["plan"],
            registry_uri=registry_uri,
            model_name=model_name,
            run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            source=source,
            query=query,
            images=IMAGES,  # noqa: F821 (bound by build_pipeline)
        )
        register_task.set_retry(**RETRY).set_caching_options(enable_caching=False)
        register_task.set_display_name("register")

        with dsl.If(evaluate_task.outputs["Output"] == "promote", name="gate-passed"):
            promote_task = promote(
                registry_uri=registry_uri,
                model_name=model_name,
                version=register_task.output,
                evaluation=evaluate_task.outputs["evaluation"],
            )
            promote_task.set_retry(**RETRY).set_caching_options(enable_caching=False)
            promote_task.set_display_name("promote")
        tasks += [preprocess_task, train_task, evaluate_task, register_task, promote_task]

    with dsl.Else(name="nothing-changed"):
        reuse_task = reuse(
            registry_uri=registry_uri, model_name=model_name, plan=plan_task.outputs["plan"]
        )
        reuse_task.set_caching_options(enable_caching=False).set_display_name("reuse")
        tasks.append(reuse_task)

    for task in tasks:
        _object_store_access(task)

    return dsl.OneOf(register_task.output, reuse_task.output)


STEPS = {
    step.__name__: step
    for step in (
        ingest,
        snapshot,
        validate,
        plan,
        reuse,
        preprocess,
        train,
        evaluate,
        register,
        promote,
    )
}
"""Step name -> its function (each a lightweight component once given its image)."""


def build_pipeline(images: Mapping[str, str]) -> dsl.graph_component.GraphComponent:
    """The pipeline, each step a component on its image (``images``: step name -> image, e.g.
    :func:`mlp_pipeline.images.spec_step_images`). ``training_pipeline`` runs with its step
    names bound to those components, and the register step records the images (lineage:
    which images built a version)."""
    components = {
        name: dsl.component(step, base_image=images[name], install_kfp_package=False)
        for name, step in STEPS.items()
    }
    scope = {
        **training_pipeline.__globals__,
        **components,
        "IMAGES": json.dumps(
            {step: images[step] for step in sorted(STEP_COMPONENT)}, sort_keys=True
        ),
    }
    bound = types.FunctionType(
        training_pipeline.__code__,
        scope,
        training_pipeline.__name__,
        training_pipeline.__defaults__,
        training_pipeline.__closure__,
    )
    bound.__annotations__ = training_pipeline.__annotations__
    bound.__kwdefaults__ = training_pipeline.__kwdefaults__
    bound.__doc__ = training_pipeline.__doc__
    bound.__qualname__ = training_pipeline.__qualname__
    bound.__module__ = training_pipeline.__module__
    return dsl.pipeline(name=PIPELINE_NAME, description=DESCRIPTION)(bound)
