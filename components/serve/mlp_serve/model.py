"""``RegistryModel``: a ``kserve.Model`` serving one registry version, hot-swapping to a new one.

The served version is one immutable ``LoadedVersion`` referenced by ``self.current``. A request
reads that reference once and uses it to the end, so swapping in a new version (loaded and
warmed up on a background thread) never fails or mixes versions in flight.

The request path: KServe decodes the body; ``payload`` turns it into a float32 matrix; the
``MicroBatcher`` gathers concurrent requests into one call of the version's traced function on a
worker thread (the event loop never runs TensorFlow); the answer slices go back as v1 or v2.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from kserve import Model
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse
from mlp_common.files import read_json
from mlp_common.registry import ModelRegistry, ModelVersion

from mlp_serve import metrics
from mlp_serve.batching import BatchSettings, MicroBatcher
from mlp_serve.payload import BadRequest, Matrix, labels, parse_v1, parse_v2, v1_response
from mlp_serve.request_log import RequestLog

log = logging.getLogger(__name__)

FEATURES_FILE = "features.json"


@dataclass(frozen=True)
class LoadedVersion:
    version: int
    features: tuple[str, ...]
    classes: tuple[str, ...]
    predict: Callable[[Matrix], np.ndarray]
    created_at: float | None
    input_name: str = "features"

    def metadata(self, model: str) -> dict[str, Any]:
        """The Open Inference Protocol (v2) model metadata of this version."""
        return {
            "name": model,
            "versions": [str(self.version)],
            "platform": "tensorflow",
            "inputs": [
                {"name": self.input_name, "datatype": "FP32", "shape": [-1, len(self.features)]}
            ],
            "outputs": [
                {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(self.classes)]},
                {"name": "label", "datatype": "BYTES", "shape": [-1]},
            ],
        }


def configure_tensorflow(threads: int) -> None:
    """Size TensorFlow's own pools to ``threads`` (the CPU limit); call before the first op.

    TensorFlow defaults to one thread per *node* core for both pools; in a pod limited to one
    CPU those threads only fight the event loop for the quota.
    """
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def _timestamp(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def load_version(entry: ModelVersion) -> LoadedVersion:
    """Load, trace and warm up one registry version (slow; never on the request path)."""
    import tensorflow as tf

    if entry.keras_path.is_file():
        keras_model = tf.keras.models.load_model(entry.keras_path, compile=False)
        n_features = int(keras_model.input_shape[-1])
        input_name = str(keras_model.inputs[0].name).split(":")[0]

        def call(x: tf.Tensor) -> tf.Tensor:
            return keras_model(x, training=False)

    elif entry.saved_model_path.is_dir():
        saved = tf.saved_model.load(str(entry.saved_model_path))
        signature = saved.signatures["serving_default"]
        input_name, spec = next(iter(signature.structured_input_signature[1].items()))
        n_features = int(spec.shape[-1])

        def call(x: tf.Tensor) -> tf.Tensor:
            return next(iter(signature(x).values()))

    else:
        raise FileNotFoundError(f"{entry.path}: neither model.keras nor saved_model/")

    described = entry.path / FEATURES_FILE
    description = read_json(described) if described.is_file() else {}
    features = tuple(description.get("features") or (f"f{i}" for i in range(n_features)))
    if len(features) != n_features:
        raise ValueError(f"{described}: {len(features)} features but the model takes {n_features}")

    # One concrete graph for any number of rows; calling it directly skips tf.function's
    # argument binding and retracing checks on every call.
    traced = tf.function(
        call, input_signature=[tf.TensorSpec([None, n_features], tf.float32)]
    ).get_concrete_function()
    warm = traced(tf.zeros([1, n_features], tf.float32)).numpy()
    classes = tuple(str(c) for c in description.get("classes") or range(warm.shape[-1]))
    if len(classes) != warm.shape[-1]:
        raise ValueError(
            f"{described}: {len(classes)} classes but the model outputs {warm.shape[-1]}"
        )

    def predict(x: Matrix) -> np.ndarray:
        return traced(tf.constant(x)).numpy()  # type: ignore[no-any-return]

    return LoadedVersion(
        version=entry.version,
        features=features,
        classes=classes,
        predict=predict,
        created_at=_timestamp(entry.metadata.get("created_at")),
        input_name=input_name,
    )


class RegistryModel(Model):  # type: ignore[misc]
    """Serve ``ref`` (a version number, ``latest`` or ``production``) of a registry model.

    A number pins the version: the server never switches, whatever the registry's pointers do
    (a canary revision pinned to its candidate, the stable one to the production version). A
    pointer is followed: :meth:`refresh` reloads when *that* pointer names another version, so
    a server following ``production`` ignores new ``latest`` versions, and a promotion reaches
    pinned servers only through the spec (``platformgen promote-model``)."""

    def __init__(
        self,
        name: str,
        registry: ModelRegistry,
        ref: str,
        request_log: RequestLog | None = None,
        batching: BatchSettings | None = None,
    ) -> None:
        super().__init__(name)
        self.registry = registry
        self.ref = ref
        self.request_log = request_log
        self.batcher = MicroBatcher(batching or BatchSettings())
        self.current: LoadedVersion | None = None
        self._reload_lock = threading.Lock()
        self._stop = threading.Event()

    @property
    def pinned(self) -> bool:
        """``ref`` is a version number: nothing to follow, so nothing to poll."""
        return str(self.ref).isdigit()

    # -- loading ---------------------------------------------------------------------------
    def load(self) -> bool:
        self._swap(load_version(self.registry.get(self.name, self.ref)))
        self.ready = True
        return self.ready

    def _swap(self, loaded: LoadedVersion) -> None:
        self.current = loaded
        labels_ = {"model": self.name}
        metrics.MODEL_VERSION.labels(**labels_).set(loaded.version)
        metrics.MODEL_LOADED.labels(**labels_).set(time.time())
        if loaded.created_at is not None:
            metrics.MODEL_CREATED.labels(**labels_).set(loaded.created_at)
        log.warning("serving %s version %d", self.name, loaded.version)

    def refresh(self) -> bool:
        """Load the version ``ref`` names now, if it changed. True when a new version went live."""
        with self._reload_lock:
            try:
                wanted = self.registry.resolve(self.name, self.ref)
                if self.current is not None and wanted == self.current.version:
                    return False
                loaded = load_version(self.registry.get(self.name, wanted))
            except Exception as exc:  # keep serving the old version whatever went wrong
                metrics.RELOADS.labels(model=self.name, outcome="error").inc()
                log.error(
                    "reload of %s %s failed, still serving the old version: %s",
                    self.name,
                    self.ref,
                    exc,
                )
                return False
            self._swap(loaded)
            metrics.RELOADS.labels(model=self.name, outcome="ok").inc()
            return True

    def watch(self, interval: float) -> threading.Thread:
        """Poll the registry every ``interval`` seconds on a daemon thread."""

        def loop() -> None:
            while not self._stop.wait(interval):
                self.refresh()

        thread = threading.Thread(target=loop, name="registry-watch", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()
        self.batcher.close()
        if self.request_log is not None:
            self.request_log.close()

    # -- metadata (v2 GET /v2/models/<m>) ----------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        served = self.current
        if served is None:  # pragma: no cover - KServe checks readiness first
            raise InvalidInput("model is not loaded")
        return served.metadata(self.name)

    def get_input_types(self) -> list[dict[str, Any]]:
        return list(self.metadata()["inputs"])

    def get_output_types(self) -> list[dict[str, Any]]:
        return list(self.metadata()["outputs"])

    # -- request path ----------------------------------------------------------------------
    async def predict(
        self, payload: dict[str, Any] | InferRequest | bytes, headers: dict[str, str] | None = None
    ) -> dict[str, Any] | InferResponse:
        served = self.current
        if served is None:  # pragma: no cover - KServe checks readiness first
            raise InvalidInput("model is not loaded")
        try:
            if isinstance(payload, InferRequest):
                x = parse_v2(payload.inputs, len(served.features))
            elif isinstance(payload, bytes | bytearray):
                raise BadRequest("body must be JSON (Content-Type: application/json)")
            else:
                x = parse_v1(payload, served.features)
        except BadRequest as exc:
            raise InvalidInput(str(exc)) from None
        probabilities = await self.batcher.predict(served, x)
        if self.request_log is not None:
            self.request_log.submit(served.version, served.features, x)
        if isinstance(payload, InferRequest):
            rows, k = probabilities.shape
            return InferResponse(
                response_id=payload.id or "",
                model_name=self.name,
                model_version=str(served.version),
                infer_outputs=[
                    InferOutput("probabilities", [rows, k], "FP32", probabilities.ravel().tolist()),
                    InferOutput("label", [rows], "BYTES", labels(probabilities, served.classes)),
                ],
            )
        return v1_response(probabilities, served.classes, served.version)
