"""The reference servers of the serving benchmark, each a plain KServe ``ModelServer``.

``python bench/serving_baselines.py --kind K --model-dir DIR --name wine --port N``

- ``constant``: a ``kserve.Model`` whose ``predict`` returns a constant: KServe's own ceiling
  (decode, route, encode; no model at all).
- ``keras``: the stock custom model of KServe's docs, calling the Keras model once per request
  (``model(x)``, eager) inside a synchronous ``predict``.
- ``predict``: the same, with ``model.predict(x)`` per request (the docs' most common style).

All three use KServe's defaults (one worker, predict on the event loop) except that, like our
server, per-request logging is off and gRPC is not started, so the comparison is of request
paths, not of log volume.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", choices=["constant", "keras", "predict"], required=True)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--name", default="wine")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.argv = sys.argv[:1]  # kserve.model_server parses sys.argv on import

    import kserve
    import numpy as np

    class Constant(kserve.Model):  # type: ignore[misc]
        def load(self) -> bool:
            self.ready = True
            return True

        def predict(self, payload: Any, headers: Any = None) -> dict[str, Any]:
            return {"predictions": ["0"]}

    class KerasPerRequest(kserve.Model):  # type: ignore[misc]
        def __init__(self, name: str, model_dir: Path, use_predict: bool) -> None:
            super().__init__(name)
            self.model_dir = model_dir
            self.use_predict = use_predict

        def load(self) -> bool:
            import tensorflow as tf

            self.model = tf.keras.models.load_model(self.model_dir / "model.keras", compile=False)
            self.ready = True
            return True

        def predict(self, payload: Any, headers: Any = None) -> dict[str, Any]:
            x = np.asarray(payload["instances"], dtype="float32")
            if self.use_predict:
                probabilities = self.model.predict(x, verbose=0)
            else:
                probabilities = self.model(x, training=False).numpy()
            return {"predictions": probabilities.tolist()}

    model: kserve.Model
    if args.kind == "constant":
        model = Constant(args.name)
    else:
        model = KerasPerRequest(args.name, args.model_dir, use_predict=args.kind == "predict")
    model.load()
    server = kserve.ModelServer(
        http_port=args.port,
        workers=1,
        enable_grpc=False,
        enable_docs_url=False,
        enable_latency_logging=False,
    )
    # ModelServer() configures KServe's logging (INFO); then silence the per-request lines:
    # uvicorn's access log and KServe's timing trace.
    for noisy in ("uvicorn.access", "kserve.trace"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    server.start([model])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
