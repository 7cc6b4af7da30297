"""Multi-worker training: TensorFlow's ``MultiWorkerMirroredStrategy``, driven by ``TF_CONFIG``.

The train step runs this path when ``TF_CONFIG`` is set (by ``mlp_train.launch`` on one machine,
by the TrainingRuntime's entrypoint on Kubernetes) and the default strategy otherwise
(:func:`mlp_train.core.fit_local`). Everything but the fit is the single-worker code path
(:func:`mlp_train.core.train`): the same inputs, evaluation, metrics and model directory.

- Synchronous data parallelism: every worker holds a replica of the model; gradients are
  all-reduced (collective ring over gRPC) after every step, so all replicas stay identical.
- Input: each worker reads its own shard of the training rows (``Dataset.shard`` by input
  pipeline id inside ``distribute_datasets_from_function``), shuffled with the seed.
- Batch: ``--batch-size`` is per worker; the global batch is ``batch_size * workers``, so a step
  consumes ``workers`` times the rows and an epoch has ``rows // global_batch`` steps (the
  learning rate is not rescaled).
- Writing: every worker runs the same code (saving involves collectives in general, so TF's guide
  has every worker save); only the chief (worker 0, or the ``chief`` task) writes to
  ``--output``; the others write to a temporary folder that is removed afterwards. The chief's
  directory is the one evaluate and register read, so only the chief's model reaches the
  registry.
- Fault tolerance: ``BackupAndRestore`` checkpoints the model and epoch counter into
  ``--backup-dir`` at the end of every epoch (the chief writes it, the others write to temporary
  subfolders). When a worker dies, its peers' collectives fail, the cluster is restarted (JobSet
  restarts the whole job; ``mlp_train.launch`` does the same locally), and ``fit`` resumes at the
  first epoch not backed up. The backup is deleted when training completes. On Kubernetes the
  directory must be on storage that outlives the pods and that every worker reads.
- Determinism: seeds, op determinism (mlp_common.seeds) and a fixed worker count give identical
  weights run after run; a resumed run restarts the data order at the restored epoch, so it is
  not bit-identical to an uninterrupted one.

Keras: Keras 3 (TensorFlow's default ``tf.keras`` since 2.16) cannot ``fit`` under
``MultiWorkerMirroredStrategy`` (keras-team/keras#20585: its trainer all-reduces the input batch
and the metric results with the wrong structure), so the workers train with ``tf_keras`` (Keras 2,
same TensorFlow release), whose multi-worker ``fit`` and ``BackupAndRestore`` are the ones TF's
multi-worker guide uses. The trained weights are then copied into the Keras 3 model of
:func:`mlp_train.core.build_model`, so the saved model is the same format as a single-worker one
(the optimizer's slots in it start at zero: tf_keras's Adam state is not carried over).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlp_common.step import StepError

from mlp_train.core import HyperParameters, build_model, train
from mlp_train.inputs import SplitFiles, parquet_dataset

STRATEGY = "MultiWorkerMirroredStrategy"
# Layers whose weights training changes (Normalization holds fixed statistics, Dropout none).
TRAINED_LAYERS = ("hidden", "probabilities")


@dataclass(frozen=True)
class ClusterSpec:
    """This process's place in the cluster that ``TF_CONFIG`` describes."""

    addresses: tuple[str, ...]  # chief first (if there is a chief task), then the workers
    rank: int  # index into addresses

    @property
    def workers(self) -> int:
        return len(self.addresses)

    @property
    def is_chief(self) -> bool:
        return self.rank == 0


def cluster_from_environment(environ: Mapping[str, str] | None = None) -> ClusterSpec | None:
    """The cluster in ``TF_CONFIG``, or None when it is unset or empty (default strategy)."""
    raw = (os.environ if environ is None else environ).get("TF_CONFIG", "").strip()
    if not raw:
        return None
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise StepError(f"TF_CONFIG: not JSON: {exc}") from exc
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise StepError("TF_CONFIG: must be an object with 'cluster' and 'task'")
    unknown = sorted(set(cluster) - {"chief", "worker"})
    if unknown:
        raise StepError(
            f"TF_CONFIG: cluster.{unknown[0]}: {STRATEGY} has only 'chief' and 'worker' tasks"
        )
    chief = cluster.get("chief", [])
    workers = cluster.get("worker", [])
    if not isinstance(chief, list) or len(chief) > 1:
        raise StepError("TF_CONFIG: cluster.chief: must be a list of at most one address")
    if not isinstance(workers, list) or not all(isinstance(a, str) for a in [*chief, *workers]):
        raise StepError("TF_CONFIG: cluster.worker: must be a list of host:port addresses")
    addresses = (*chief, *workers)
    if not addresses:
        raise StepError("TF_CONFIG: cluster: no chief or worker addresses")
    kind, index = task.get("type"), task.get("index", 0)
    if kind not in ("chief", "worker"):
        raise StepError(f"TF_CONFIG: task.type {kind!r}: must be 'chief' or 'worker'")
    members = chief if kind == "chief" else workers
    if not isinstance(index, int) or not 0 <= index < len(members):
        raise StepError(
            f"TF_CONFIG: task.index {index!r}: must be in [0, {len(members)}) for '{kind}'"
        )
    rank = index if kind == "chief" else len(chief) + index
    return ClusterSpec(addresses=addresses, rank=rank)


def default_backup_dir(output: str | Path) -> Path:
    """``<output>.backup`` beside the model directory."""
    output = Path(output)
    return output.with_name(f"{output.name}.backup")


def make_strategy() -> Any:
    """The strategy, created before any other TensorFlow op as TF requires (it reads
    ``TF_CONFIG`` and starts this worker's gRPC server)."""
    import tensorflow as tf

    return tf.distribute.MultiWorkerMirroredStrategy()


def fit_multi_worker(strategy: Any, cluster: ClusterSpec, backup_dir: Path) -> Any:
    """A :data:`mlp_train.core.Fit` that trains under ``strategy`` (see the module doc)."""

    def fit(
        description: dict[str, Any],
        params: HyperParameters,
        train_split: SplitFiles,
        val_split: SplitFiles,
    ) -> tuple[Any, Any, dict[str, Any]]:
        import tensorflow as tf
        import tf_keras

        global_batch = params.batch_size * cluster.workers
        rows = train_split.rows
        if rows < global_batch:
            raise StepError(
                f"train split: {rows} rows, fewer than one global batch "
                f"({params.batch_size} per worker x {cluster.workers} workers)"
            )
        steps_per_epoch = rows // global_batch

        def shard(context: Any) -> Any:  # by file shard (row group) when there are enough
            return parquet_dataset(
                train_split,
                context.get_per_replica_batch_size(global_batch),
                shuffle=True,
                seed=params.seed,
                workers=context.num_input_pipelines,
                worker=context.input_pipeline_id,
                repeat=True,
                drop_remainder=True,
            )

        # Every worker evaluates all validation rows (no sharding); the all-reduced mean of the
        # identical results is the same val_loss everywhere, so early stopping agrees.
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        val_data = parquet_dataset(val_split, global_batch, shuffle=False, seed=params.seed)

        with strategy.scope():
            model = build_model(description, params, keras=tf_keras)
        counter = _StepCounter(tf_keras)
        history = model.fit(
            strategy.distribute_datasets_from_function(shard),
            steps_per_epoch=steps_per_epoch,
            validation_data=val_data.with_options(options),
            epochs=params.epochs,
            callbacks=[
                tf_keras.callbacks.BackupAndRestore(str(backup_dir)),
                tf_keras.callbacks.EarlyStopping(
                    monitor="val_loss", patience=params.patience, restore_best_weights=True
                ),
                counter,
            ],
            verbose=0,
        )
        result = build_model(description, params)
        for name in TRAINED_LAYERS:
            result.get_layer(name).set_weights(model.get_layer(name).get_weights())
        # Give the Keras 3 optimizer its slots, so model.keras loads (compiled) like a
        # single-worker one; the slots start at zero (tf_keras's Adam state is not carried over).
        result.optimizer.build(result.trainable_variables)
        extra = {
            "distribution": {
                "strategy": STRATEGY,
                "workers": cluster.workers,
                "per_worker_batch_size": params.batch_size,
                "global_batch_size": global_batch,
                "steps_per_epoch": steps_per_epoch,
                "initial_epoch": counter.initial_epoch,
                "steps_run": counter.steps,
            }
        }
        return result, history, extra

    return fit


def _StepCounter(tf_keras: Any) -> Any:  # noqa: N802 - tf_keras is imported lazily
    class StepCounter(tf_keras.callbacks.Callback):  # type: ignore[misc]
        """Counts the steps this attempt runs and the epoch it starts at (after a restore)."""

        def __init__(self) -> None:
            super().__init__()
            self.steps = 0
            self.initial_epoch: int | None = None

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            if self.initial_epoch is None:
                self.initial_epoch = epoch

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.steps += 1

    return StepCounter()


def train_distributed(
    data_dir: str | Path,
    output: str | Path,
    params: HyperParameters,
    cluster: ClusterSpec,
    backup_dir: str | Path | None = None,
    *,
    data_record: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train as one worker of ``cluster``; the chief writes ``output``, the others a temporary
    folder that is removed. Returns this worker's metrics (identical on every worker)."""
    strategy = make_strategy()
    if strategy.num_replicas_in_sync != cluster.workers:
        raise StepError(
            f"TF_CONFIG: {cluster.workers} workers, but the strategy has "
            f"{strategy.num_replicas_in_sync} replicas (one CPU device per worker expected)"
        )
    backup = Path(backup_dir) if backup_dir else default_backup_dir(output)
    fit = fit_multi_worker(strategy, cluster, backup)
    import tensorflow as tf

    try:
        if cluster.is_chief:
            metrics = train(data_dir, output, params, fit=fit, data_record=data_record)
            with contextlib.suppress(OSError):  # fit deleted the checkpoints; drop the folder
                backup.rmdir()
            return metrics
        scratch = Path(tempfile.mkdtemp(prefix=f"mlp-train-worker-{cluster.rank}-"))
        try:
            return train(data_dir, scratch / "model", params, fit=fit, data_record=data_record)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError) as exc:
        first = str(exc).strip().splitlines()[0][:300]
        raise StepError(
            f"worker {cluster.rank}: a peer worker is gone ({first}); restart all "
            f"{cluster.workers} workers to resume from the backup in {backup}"
        ) from exc
