"""Registry versions for the alert chain: `python alert_chain_models.py <registry-dir>`.

Run as a separate process so TensorFlow is never imported into pytest. Prints a JSON object
naming each version. Every model is a real Keras model in `model.keras`, registered through
`mlp_common.registry` and loaded by the real model server; the faults are their real
behaviour, not hooks:

- "current" (production at start): four features; f0 is a category id looked up in an
  `Embedding(10, 3)`. A category id it never saw (>= 10) makes the lookup fail on CPU
  (InvalidArgumentError: indices ... not in [0, 10)), and the server answers 500. That is
  the 5xx fault: clients start sending a category the model was not trained on.
- "old": the same model, registered 30 days ago (its `created_at` is set back, as a
  registry restored from then would hold it). Rolling production back to it is the
  staleness fault.
- "slow": the same interface, but a convolutional stack over a 128x128 map computed from
  the features: about a second per request on one core. Promoting it is the
  latency fault.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import tempfile
import warnings
from pathlib import Path

FEATURES = ["f0", "f1", "f2", "f3"]
CLASSES = ["a", "b", "c"]
CATEGORIES = 10
MODEL = "chain"
OLD_DAYS = 30


def _embedding_model():  # type: ignore[no-untyped-def]
    import keras

    inputs = keras.Input(shape=(len(FEATURES),), name="features")
    category = keras.ops.cast(inputs[:, 0], "int32")
    embedded = keras.layers.Embedding(CATEGORIES, 3)(category)
    joined = keras.layers.Concatenate()([embedded, inputs[:, 1:]])
    outputs = keras.layers.Dense(len(CLASSES), activation="softmax")(joined)
    return keras.Model(inputs, outputs)


def _slow_model(size: int = 128, width: int = 96, layers: int = 5):  # type: ignore[no-untyped-def]
    import keras

    inputs = keras.Input(shape=(len(FEATURES),), name="features")
    x = keras.layers.Dense(size * size)(inputs)
    x = keras.layers.Reshape((size, size, 1))(x)
    for _ in range(layers):
        x = keras.layers.Conv2D(width, 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(len(CLASSES), activation="softmax")(x)
    return keras.Model(inputs, outputs)


def _save(model, directory: Path) -> Path:  # type: ignore[no-untyped-def]
    directory.mkdir(parents=True)
    with warnings.catch_warnings():
        # Keras 3 on NumPy 2 converts variables with np.array(copy=False) while saving.
        warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
        model.save(directory / "model.keras")
    (directory / "features.json").write_text(
        json.dumps({"features": FEATURES, "classes": CLASSES, "target": "label"})
    )
    return directory


def main(argv: list[str]) -> int:
    import keras
    from mlp_common.registry import ModelRegistry

    registry = ModelRegistry(argv[0])
    keras.utils.set_random_seed(7)
    versions: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        plain = _save(_embedding_model(), work / "plain")
        slow = _save(_slow_model(), work / "slow")
        for name, source in (("old", plain), ("current", plain), ("slow", slow)):
            versions[name] = registry.register(MODEL, source, {"params": {"case": name}}).version
    old = registry.get(MODEL, versions["old"])
    metadata_path = old.path / "metadata.json"
    metadata = json.loads(metadata_path.read_text())
    created = dt.datetime.now(dt.UTC) - dt.timedelta(days=OLD_DAYS)
    metadata["created_at"] = created.replace(microsecond=0).isoformat().replace("+00:00", "Z")
    metadata_path.write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    registry.promote(MODEL, versions["current"], reason="alert chain: start")
    print(json.dumps(versions))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
