"""Train: a Keras classifier over a tf.data pipeline, with early stopping and a fixed seed, plus a
scikit-learn baseline (logistic regression) on the same split. The input streams from the
preprocessed Parquet files (:mod:`mlp_train.inputs`: interleaved row-group shards, a bounded
shuffle buffer, prefetch), so training memory does not grow with the data.

Outputs (a model directory)::

    model.keras        Keras model; its first layer normalizes raw features (training statistics)
    saved_model/       TensorFlow SavedModel (signature ``serve``: float32 [None, n] -> probs)
    features.json      copied from preprocess: feature order and class names (serving needs them)
    params.json        the hyperparameters and seed
    metrics.json       val_accuracy, val_loss, baseline_val_accuracy, examples_per_second,
                       epochs_run, train_seconds and per-epoch curves (loss, val_loss, ...)
    baseline.joblib    the fitted scikit-learn baseline (evaluate scores it on the test rows)
    provenance.json    {"trained_at", "code_version"} (the training code this image or checkout
                       holds, :func:`mlp_common.provenance.training_code_version`): kept out of
                       metrics.json, which is identical for the same
                       data, params and seed (timings aside: train_seconds, examples_per_second)
    data.json          the data it read: URI and sha256 of each file (mlp_train.data_source)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlp_common.files import atomic_directory, read_json, write_json_atomic
from mlp_common.provenance import training_code_version, utc_now
from mlp_common.seeds import set_global_seed
from mlp_common.step import StepError

from mlp_train.inputs import SplitFiles, parquet_dataset

LABEL = "label"
BASELINE_ROWS = 200_000
"""Training rows the scikit-learn baseline fits on at most (an evenly spread sample beyond)."""
BASELINE_FILE = "baseline.joblib"
DATA_FILE = "data.json"
"""The data a model was trained on (mlp_train.data_source writes and reads it)."""


@dataclass(frozen=True)
class HyperParameters:
    """Training hyperparameters; names match the CLI options and the search space."""

    learning_rate: float = 0.005
    hidden_units: int = 128
    dropout: float = 0.1
    epochs: int = 60
    batch_size: int = 16
    patience: int = 8
    seed: int = 42

    def check(self) -> None:
        problems = []
        if not 0 < self.learning_rate < 1:
            problems.append(f"--learning-rate {self.learning_rate}: must be in (0, 1)")
        if self.hidden_units < 1:
            problems.append(f"--hidden-units {self.hidden_units}: must be >= 1")
        if not 0 <= self.dropout < 1:
            problems.append(f"--dropout {self.dropout}: must be in [0, 1)")
        if self.epochs < 1:
            problems.append(f"--epochs {self.epochs}: must be >= 1")
        if self.batch_size < 1:
            problems.append(f"--batch-size {self.batch_size}: must be >= 1")
        if self.patience < 1:
            problems.append(f"--patience {self.patience}: must be >= 1")
        if problems:
            raise StepError("; ".join(problems))


def load_split(data_dir: Path, name: str, features: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Features (float32, in ``features`` order) and labels (int64) of one split, in memory (the
    benchmarks' in-memory comparison; training streams :mod:`mlp_train.inputs`)."""
    path = data_dir / f"{name}.parquet"
    if not path.is_file():
        raise StepError(f"{data_dir}: no {name}.parquet; not a preprocess output directory")
    table = pd.read_parquet(path)
    missing = [c for c in [*features, LABEL] if c not in table.columns]
    if missing:
        raise StepError(f"{path}: missing columns {missing}")
    return table[features].to_numpy("float32"), table[LABEL].to_numpy("int64")


def build_model(description: dict[str, Any], params: HyperParameters, keras: Any = None) -> Any:
    """Normalization (fixed training statistics) -> Dense(relu) -> Dropout -> Dense(softmax).

    ``keras`` is the Keras module to build with: Keras 3 (``tf.keras``) by default, ``tf_keras``
    for multi-worker training (mlp_train.distributed)."""
    if keras is None:
        import tensorflow as tf

        keras = tf.keras
    n_features = len(description["features"])
    n_classes = len(description["classes"])
    inputs = keras.Input(shape=(n_features,), name="features", dtype="float32")
    normalize = keras.layers.Normalization(
        mean=np.asarray(description["mean"], "float32"),
        variance=np.maximum(np.asarray(description["variance"], "float32"), 1e-12),
        name="normalize",
    )
    hidden = keras.layers.Dense(params.hidden_units, activation="relu", name="hidden")(
        normalize(inputs)
    )
    hidden = keras.layers.Dropout(params.dropout, seed=params.seed, name="dropout")(hidden)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="probabilities")(hidden)
    model = keras.Model(inputs, outputs, name="classifier")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=params.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def dataset(x: np.ndarray, y: np.ndarray, batch_size: int, *, shuffle: bool, seed: int) -> Any:
    """An in-memory tf.data pipeline: slices -> (shuffle) -> batch -> prefetch (the benchmarks'
    comparison; training reads the files: :func:`mlp_train.inputs.parquet_dataset`)."""
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        data = data.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def fit_baseline(train: tuple[np.ndarray, np.ndarray], seed: int) -> Any:
    """Standardized logistic regression on the same training split (deterministic: lbfgs)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, random_state=seed))
    return model.fit(*train)


def train(
    data_dir: str | Path,
    output: str | Path,
    params: HyperParameters,
    *,
    fit: Fit | None = None,
    data_record: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train, evaluate on the validation split, and write the model directory atomically.

    ``fit`` trains the model (default: :func:`fit_local`; mlp_train.distributed passes a
    multi-worker one); its extra metrics are merged into metrics.json. ``data_record`` (where
    the data came from and its hashes, mlp_train.data_source) is written as data.json."""
    params.check()
    data_dir = Path(data_dir)
    features_path = data_dir / "features.json"
    if not features_path.is_file():
        raise StepError(f"{data_dir}: no features.json; not a preprocess output directory")
    description = read_json(features_path)
    features = description["features"]
    train_split = SplitFiles.open(data_dir, "train", features)
    val_split = SplitFiles.open(data_dir, "val", features)

    import tensorflow  # noqa: F401  (after the input checks: importing it takes seconds)

    set_global_seed(params.seed)

    started = time.perf_counter()
    model, history, extra = (fit or fit_local)(description, params, train_split, val_split)
    seconds = time.perf_counter() - started
    epochs_run = len(history.history["loss"])
    val_loss, val_accuracy = model.evaluate(
        parquet_dataset(val_split, params.batch_size, shuffle=False, seed=params.seed), verbose=0
    )
    baseline = fit_baseline(train_split.sample(BASELINE_ROWS), params.seed)
    right = sum(int((baseline.predict(x) == y).sum()) for x, y in val_split.batches())
    metrics: dict[str, Any] = {
        "val_accuracy": float(val_accuracy),
        "val_loss": float(val_loss),
        "baseline_val_accuracy": right / max(val_split.rows, 1),
        "baseline": "sklearn LogisticRegression on standardized features, same split"
        + ("" if train_split.rows <= BASELINE_ROWS else f" (every k-th row: {BASELINE_ROWS:,})"),
        "epochs_run": epochs_run,
        "best_epoch": int(np.argmin(history.history["val_loss"])) + 1,
        "train_seconds": round(seconds, 3),
        "examples_per_second": round(train_split.rows * epochs_run / seconds, 1),
        "train_examples": train_split.rows,
        "val_examples": val_split.rows,
        "curves": {k: [round(float(v), 6) for v in vs] for k, vs in history.history.items()},
        **extra,
    }
    import joblib

    with atomic_directory(output) as tmp:
        joblib.dump(baseline, tmp / BASELINE_FILE)
        trained = {"trained_at": utc_now(), "code_version": training_code_version()}
        write_json_atomic(tmp / "provenance.json", trained)
        model.save(tmp / "model.keras")
        model.export(str(tmp / "saved_model"), verbose=False)
        write_json_atomic(tmp / "features.json", description)
        write_json_atomic(tmp / "params.json", asdict(params))
        write_json_atomic(tmp / "metrics.json", metrics)
        if data_record is not None:
            write_json_atomic(tmp / DATA_FILE, data_record)
    return metrics


# fit(description, params, train, val) -> (compiled Keras 3 model, History, extra metrics)
Fit = Callable[
    [dict[str, Any], HyperParameters, SplitFiles, SplitFiles], tuple[Any, Any, dict[str, Any]]
]


def fit_local(
    description: dict[str, Any],
    params: HyperParameters,
    train_split: SplitFiles,
    val_split: SplitFiles,
) -> tuple[Any, Any, dict[str, Any]]:
    """Fit in this process under TensorFlow's default strategy, with early stopping."""
    import tensorflow as tf

    model = build_model(description, params)
    stop = tf.keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=params.patience, restore_best_weights=True
    )
    history = model.fit(
        parquet_dataset(train_split, params.batch_size, shuffle=True, seed=params.seed),
        validation_data=parquet_dataset(
            val_split, params.batch_size, shuffle=False, seed=params.seed
        ),
        epochs=params.epochs,
        callbacks=[stop],
        shuffle=False,  # tf.data shuffles (seeded); Keras must not shuffle again
        verbose=0,
    )
    return model, history, {}
