"""The KFP v2beta1 stand-in (mlp_common.kfp_test_server) as a server in the test cluster.

    python /app/kfp_api.py --port 8888 --seed /etc/kfp/seed.json

The seed names the pipelines and versions the cluster holds (the rendered Pipeline and
PipelineVersion objects, as KFP's API server in Kubernetes-native mode reads them):
`{"pipelines": [{"name": ..., "namespace": ..., "versions": [...]}]}`. It runs nothing: a run
is reported SUCCEEDED when it is read back, so a Job that submits a run and waits completes.
Standard library only (it runs in the stand-ins image, tests/e2e/stand_ins/Dockerfile).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from mlp_common.kfp_test_server import KfpApi, _Handler


class _Succeeding(_Handler):
    def _route(
        self, method: str, path: str, query: dict[str, str], body: dict[str, Any] | None
    ) -> tuple[int, dict[str, Any]]:
        status, reply = super()._route(method, path, query, body)
        segments = path.strip("/").split("/")
        if method == "GET" and status == 200 and len(segments) == 2 and segments[0] == "runs":
            self.api.runs[segments[1]]["state"] = "SUCCEEDED"
            reply = self.api.runs[segments[1]]
        print(f"{method} {path} -> {status}", flush=True)
        return status, reply


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--seed", type=Path, required=True)
    args = parser.parse_args(argv)
    api = KfpApi(url=f"http://0.0.0.0:{args.port}")
    for pipeline in json.loads(args.seed.read_text(encoding="utf-8"))["pipelines"]:
        api.add_pipeline(pipeline["name"], pipeline["versions"], pipeline["namespace"])
    handler = type("Handler", (_Succeeding,), {"api": api})
    ThreadingHTTPServer(("0.0.0.0", args.port), handler).serve_forever()  # noqa: S104
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
