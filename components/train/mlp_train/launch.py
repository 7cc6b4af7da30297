"""``mlp-train-cluster``: run the train step as N TensorFlow workers on this machine.

Each worker is ``python -m mlp_train <train options>`` with its own ``TF_CONFIG``: the cluster
is N addresses ``127.0.0.1:<free port>`` and the task is ``worker`` with its index (worker 0 is
the chief). This is the same contract the Kubernetes TrainingRuntime's entrypoint fulfils with
JobSet's pod host names instead of local ports.

Failure handling mirrors JobSet's ``failurePolicy`` (restart the whole set): when any worker
exits non-zero or is killed, its peers cannot finish (their all-reduce needs every worker), so
the launcher stops them and starts all N again with fresh ports, up to ``--max-restarts`` times.
The restarted workers resume from the ``BackupAndRestore`` checkpoint in ``--backup-dir``.

Stdout gets one JSON summary (attempts, per-worker exit codes, wall time and peak RSS); worker
logs go to ``<workdir>/attempt-<n>/worker-<i>.log``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlp_common.step import StepError, configure_logging, run_step


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports that were free on 127.0.0.1 a moment ago."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def tf_config(addresses: Sequence[str], index: int) -> str:
    """The ``TF_CONFIG`` of worker ``index`` in a cluster of ``addresses`` (worker 0 = chief)."""
    return json.dumps(
        {"cluster": {"worker": list(addresses)}, "task": {"type": "worker", "index": index}}
    )


@dataclass
class Attempt:
    number: int
    addresses: list[str]
    exit_codes: list[int | None] = field(default_factory=list)
    seconds: float = 0.0
    peak_rss_mib: list[float] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return all(code == 0 for code in self.exit_codes)


class LocalCluster:
    """N worker processes of the train step on 127.0.0.1 (see the module doc)."""

    def __init__(
        self,
        workers: int,
        train_argv: Sequence[str],
        workdir: str | Path,
        *,
        environ: dict[str, str] | None = None,
    ) -> None:
        if workers < 1:
            raise StepError(f"--workers {workers}: must be >= 1")
        self.workers = workers
        self.train_argv = list(train_argv)
        self.workdir = Path(workdir)
        self.environ = dict(os.environ if environ is None else environ)
        self.processes: list[subprocess.Popen[bytes]] = []
        self.attempts: list[Attempt] = []

    def start(self) -> Attempt:
        attempt = Attempt(
            number=len(self.attempts) + 1,
            addresses=[f"127.0.0.1:{port}" for port in free_ports(self.workers)],
        )
        logs = self.workdir / f"attempt-{attempt.number}"
        logs.mkdir(parents=True, exist_ok=True)
        self.processes = []
        for index in range(self.workers):
            env = self.environ | {"TF_CONFIG": tf_config(attempt.addresses, index)}
            with open(logs / f"worker-{index}.log", "wb") as log:
                self.processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "mlp_train", *self.train_argv],
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        self.attempts.append(attempt)
        return attempt

    def kill(self, index: int) -> None:
        """SIGKILL worker ``index`` (fault injection)."""
        with contextlib.suppress(ProcessLookupError):
            self.processes[index].send_signal(signal.SIGKILL)

    def wait(
        self, attempt: Attempt, deadline: float, monitor: Callable[[LocalCluster], None] | None
    ) -> None:
        """Reap the workers; when one fails, stop the others (they cannot finish without it)."""
        started = time.monotonic()
        codes: list[int | None] = [None] * self.workers
        rss: list[float] = [0.0] * self.workers
        stopping = False
        stop_by = float("inf")
        while any(code is None for code in codes):
            for index, process in enumerate(self.processes):
                if codes[index] is not None:
                    continue
                pid, status, usage = os.wait4(process.pid, os.WNOHANG)
                if pid == 0:
                    continue
                process.returncode = codes[index] = os.waitstatus_to_exitcode(status)
                rss[index] = round(usage.ru_maxrss / 1024, 1)  # Linux: KiB
            failed = any(code not in (None, 0) for code in codes)
            if (failed or time.monotonic() > deadline) and not stopping:
                stopping = True
                for index, process in enumerate(self.processes):
                    if codes[index] is None:
                        with contextlib.suppress(ProcessLookupError):
                            process.send_signal(signal.SIGTERM)
                stop_by = time.monotonic() + 10
            if stopping and time.monotonic() > stop_by:
                for index in range(self.workers):
                    if codes[index] is None:
                        self.kill(index)
            if monitor is not None and not stopping:
                monitor(self)
            time.sleep(0.05)
        attempt.exit_codes = codes
        attempt.peak_rss_mib = rss
        attempt.seconds = round(time.monotonic() - started, 3)

    def run(
        self,
        *,
        max_restarts: int = 3,
        timeout: float = 1800,
        monitor: Callable[[LocalCluster], None] | None = None,
    ) -> dict[str, Any]:
        """Start, wait, restart the whole set on failure; return the summary."""
        started = time.monotonic()
        deadline = started + timeout
        while True:
            attempt = self.start()
            self.wait(attempt, deadline, monitor)
            if attempt.succeeded or attempt.number > max_restarts:
                break
            if time.monotonic() > deadline:
                break
        return {
            "workers": self.workers,
            "succeeded": self.attempts[-1].succeeded,
            "wall_seconds": round(time.monotonic() - started, 3),
            "attempts": [asdict(a) for a in self.attempts],
            "logs": str(self.workdir),
        }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlp-train-cluster",
        description="Run the train step as N MultiWorkerMirroredStrategy workers on 127.0.0.1 "
        "(free ports, one TF_CONFIG each); restart all of them when one fails. Options after "
        "`--` go to every worker (`mlp-train --help`). Prints a JSON summary.",
    )
    parser.add_argument("--workers", type=int, default=2, help="default 2")
    parser.add_argument("--workdir", required=True, help="worker logs (attempt-<n>/worker-<i>)")
    parser.add_argument("--max-restarts", type=int, default=3, help="default 3")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds, default 1800")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    parser.add_argument("train_args", nargs=argparse.REMAINDER, help="-- <mlp-train options>")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    train_args = args.train_args[1:] if args.train_args[:1] == ["--"] else args.train_args

    def body() -> int:
        if not train_args:
            raise StepError("no train options after `--` (at least --data and --output)")
        cluster = LocalCluster(args.workers, train_args, args.workdir)
        summary = cluster.run(max_restarts=args.max_restarts, timeout=args.timeout)
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        if not summary["succeeded"]:
            last = summary["attempts"][-1]
            raise StepError(
                f"{args.workers} workers failed after {len(summary['attempts'])} attempts "
                f"(exit codes {last['exit_codes']}); logs in {args.workdir}"
            )
        return 0

    return run_step("train-cluster", body)


if __name__ == "__main__":
    raise SystemExit(main())
