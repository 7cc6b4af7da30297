#!/usr/bin/env python3
"""`make demo`: build, render, validate, train and serve the platform, one line per step.

The terminal gets one line per step (group, name, status, wall seconds, a short result), a
"still running" line on long steps (on a terminal, one line updated in place instead), and a
summary at the end: objects per kind and environment, validation, the model's metrics, the gate
decision, the registered version and a served prediction with its latency. Each step's full
output goes to ``.run/demo/<UTC time>/<step>.log`` (``.run/demo/latest`` links the newest); the
pipeline's tasks each get ``pipeline/<task>.log`` as well. ``-v`` (``make demo VERBOSE=1``)
prints the full logs too.

On failure: exit 1, the failing step named, and the tail of its log.

Standard library only: it runs with the system Python, because its first step builds the venv.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parent.parent
WIDTH = 100
"""No line the demo prints is wider (summary lines wrap with a hanging indent)."""
TAIL_LINES = 25
"""Lines of the failing step's log printed on failure."""
SILENCE = (30.0, 60.0, 120.0)
"""Seconds of silence after which a "still running" line is printed when not on a terminal:
the first after 30 s without output, the next 60 s later, then every 120 s."""
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
TASK_START = re.compile(r"Executing task '([^']+)'")
TASK_DONE = re.compile(r"Task '([^']+)' finished with status (\w+)")
KUSTOMIZE_TARGET = re.compile(r"^(base|overlays/(?P<env>[\w-]+))$")
CHART_TARGET = re.compile(r"^\S+ (?P<env>[\w-]+), (?P<helm>Helm \d+)$")
"""`platformgen validate` names chart targets `charts/<name> <env>, Helm <major>`."""


# --- results and the summary (pure) -------------------------------------------------------------


@dataclass
class StepResult:
    group: str
    name: str
    ok: bool
    seconds: float
    log: Path
    detail: str = ""


@dataclass
class Results:
    """What the steps produced, for the summary. Missing parts are left out of it."""

    steps: list[StepResult] = field(default_factory=list)
    validation: dict[str, Any] | None = None
    """`platformgen validate --report` JSON."""
    pipeline: dict[str, Any] | None = None
    """`mlp-pipeline run --summary-json` JSON."""
    served: dict[str, Any] | None = None
    """The JSON line `python -m mlp_serve.smoke` prints."""


def step_line(result: StepResult) -> str:
    status = "ok" if result.ok else "FAILED"
    line = f"  {result.group:<9} {result.name:<11} {status:<7}{result.seconds:7.1f}s"
    return _clip(f"{line}  {result.detail}" if result.detail else line)


def _clip(line: str) -> str:
    return line if len(line) <= WIDTH else line[: WIDTH - 3] + "..."


def _wrap(label: str, text: str) -> list[str]:
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=f"  {label:<12}",
        subsequent_indent=" " * 14,
        break_on_hyphens=False,
    )


def objects_table(kinds_by_env: dict[str, dict[str, int]]) -> list[str]:
    """Objects per kind per environment, the kinds in two side-by-side halves."""
    envs = sorted(kinds_by_env)
    kinds = sorted({kind for counts in kinds_by_env.values() for kind in counts})
    if not kinds:
        return []
    name = max(len(k) for k in ["objects", *kinds])
    widths = {e: max(4, len(e)) for e in envs}

    def row(label: str, counts: dict[str, Any]) -> str:
        return f"{label:<{name}}  " + " ".join(f"{counts[e]:>{widths[e]}}" for e in envs)

    def cell(kind: str) -> str:
        return row(kind, {e: kinds_by_env[e].get(kind, 0) for e in envs})

    header = row("objects", {e: e for e in envs})
    half = (len(kinds) + 1) // 2
    left, right = kinds[:half], kinds[half:]
    lines = [f"  {header}    {header}" if right else f"  {header}"]
    for index, kind in enumerate(left):
        other = f"    {cell(right[index])}" if index < len(right) else ""
        lines.append(f"  {cell(kind)}{other}")
    lines.append("  " + row("total", {e: sum(kinds_by_env[e].values()) for e in envs}))
    return lines


def validation_lines(report: dict[str, Any]) -> list[str]:
    targets = report.get("targets", [])
    valid = sum(1 for t in targets if t.get("ok"))
    objects = sum(int(t.get("resources", 0)) for t in targets)
    versions = sorted({str(t["kubernetes_version"]) for t in targets})
    kustomize: dict[str, None] = {}
    chart_envs: dict[str, None] = {}
    helms: dict[str, None] = {}
    for target in targets:
        match = KUSTOMIZE_TARGET.match(target["target"])
        chart = CHART_TARGET.match(target["target"])
        if match:
            kustomize[match.group("env") or "base"] = None
        elif chart:
            chart_envs[chart.group("env")] = None
            helms[chart.group("helm")] = None
    what = f"{valid} of {len(targets)} builds valid ({objects} objects): kustomize "
    what += ", ".join(kustomize)
    if chart_envs:
        what += f" and the Helm chart ({', '.join(chart_envs)}; {', '.join(helms)})"
    what += f", each through kubeconform -strict for Kubernetes {' and '.join(versions)}"
    lines = _wrap("validation", what)
    argocd = report.get("argocd") or {}
    if argocd:
        status = "ok" if argocd.get("ok") else "FAILED"
        lines += _wrap("", f"Argo CD {status}: {argocd['summary'].removeprefix('argocd/: ')}")
    for target in targets:
        if not target.get("ok"):
            lines += _wrap("", f"FAILED {target['target']} k8s {target['kubernetes_version']}")
    return lines


def metric_lines(metrics: dict[str, Any], per_line: int = 2) -> list[str]:
    """Metrics in aligned columns, `per_line` to a line."""
    width = max([len(name) for name in metrics] or [0])
    cells = [f"{name:<{width}} {_number(value):>7}" for name, value in sorted(metrics.items())]
    rows = [cells[i : i + per_line] for i in range(0, len(cells), per_line)]
    return [
        f"  {'metrics' if index == 0 else '':<12}" + "   ".join(row)
        for index, row in enumerate(rows)
    ]


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.0f}"
    return str(value)


def model_lines(pipeline: dict[str, Any]) -> list[str]:
    version = pipeline.get("version")
    if not version:
        return _wrap("model", f"no version: {pipeline.get('error') or 'the run registered none'}")
    model, number = version["model"], version["version"]
    run_id = version.get("pipeline_run_id")
    if pipeline.get("reused"):
        how = f"reused: trained earlier by pipeline run {run_id} on the same data, params and "
        how += "code; nothing was trained"
    else:
        how = f"trained now by pipeline run {run_id}"
    metrics = version.get("metrics", {})
    gate = version.get("gate", {})
    gate_text = f"{gate.get('verdict', gate.get('decision', '-'))}: {gate.get('reason', '')}"
    if pipeline.get("reused"):
        gate_text += f" (decided when version {number} was trained)"
    lines = _wrap("model", f"{model} version {number}, {how}")
    lines += metric_lines(metrics)
    lines += _wrap("gate", gate_text)
    production = pipeline.get("production")
    lines += _wrap(
        "registered",
        f"{model} version {number} (parent: {version.get('parent') or 'none'}) in "
        f"{shown(Path(version.get('path', '?')))}; "
        f"production: {'none' if production is None else f'version {production}'}",
    )
    return lines


def served_lines(served: dict[str, Any]) -> list[str]:
    probabilities = served.get("probabilities") or []
    label = served.get("v1_prediction")
    confidence = f" (probability {max(probabilities):.3f})" if probabilities else ""
    agree = "v2 agrees" if served.get("v2_prediction") == label else "v2 DISAGREES"
    return _wrap(
        "served",
        f"{served.get('model')} version {served.get('version')} predicts {label}{confidence} "
        f"for the mean training row, {agree}; v1 request {served.get('v1_latency_ms')} ms",
    )


def summary_lines(results: Results) -> list[str]:
    """The summary printed after the steps (everything known so far, in a fixed order)."""
    lines = ["summary"]
    validation = results.validation or {}
    kinds: dict[str, dict[str, int]] = {}
    for target in validation.get("targets", []):
        match = KUSTOMIZE_TARGET.match(target["target"])
        if match and match.group("env"):
            kinds.setdefault(match.group("env"), target.get("kinds", {}))
    lines += objects_table(kinds)
    if validation:
        lines += validation_lines(validation)
    if results.pipeline is not None:
        lines += model_lines(results.pipeline)
    if results.served is not None:
        lines += served_lines(results.served)
    return lines


# --- running steps --------------------------------------------------------------------------------


class Console:
    """Everything the demo prints goes through here (one lock: reader threads print too)."""

    def __init__(self, stream: TextIO, verbose: bool, tty: bool | None = None) -> None:
        self.stream = stream
        self.verbose = verbose
        self.tty = stream.isatty() if tty is None else tty
        self.lock = threading.Lock()
        self._status = False
        self.printed_at = time.monotonic()
        """When the last line was printed (the "still running" lines count from there)."""

    def line(self, text: str = "") -> None:
        with self.lock:
            self._clear()
            self.stream.write(text + "\n")
            self.stream.flush()
            self.printed_at = time.monotonic()

    def log(self, text: str) -> None:
        """A line of a step's log: printed only in verbose mode."""
        if self.verbose:
            self.line("    | " + text.rstrip("\n"))

    def status(self, text: str) -> None:
        """A transient status line (terminal only), replaced by the next line."""
        with self.lock:
            self._clear()
            self.stream.write(_clip(text)[: shutil.get_terminal_size((WIDTH, 24)).columns - 1])
            self.stream.flush()
            self._status = True

    def _clear(self) -> None:
        if self._status:
            self.stream.write("\r\x1b[K")
            self._status = False


@dataclass
class Step:
    group: str
    name: str
    argv: list[str]
    detail: Callable[[Path], str] | None = None
    """The short result shown on the step's line, from its log (on success)."""
    watcher: Callable[[Path, Console], LineWatcher] | None = None
    """Splits the output into sub-steps with lines of their own (the pipeline's tasks)."""
    env: dict[str, str] = field(default_factory=dict)


class LineWatcher:
    """Sees every output line of a step; the default does nothing."""

    def feed(self, line: str) -> None:
        """One line of output (with its newline)."""

    def finish(self, ok: bool) -> StepResult | None:
        """Called once when the process ended; returns the failing sub-step, if any."""
        return None

    def current(self) -> tuple[Path, float] | None:
        """The running sub-step's log and start time (for the "still running" line)."""
        return None


class PipelineTasks(LineWatcher):
    """Splits kfp.local's output at its "Executing task 'x'" lines into ``<dir>/<task>.log``
    and prints one line per task when kfp reports it finished."""

    def __init__(self, directory: Path, console: Console, group: str = "pipeline") -> None:
        self.directory = directory
        self.console = console
        self.group = group
        self.task: str | None = None
        """The task running now (None between tasks)."""
        self.said = ""
        """The task's own one-line result, from its last `<task>: ...` line (steps print one)."""
        self.started = 0.0
        self.attempts: dict[str, int] = {}
        self.handle: TextIO | None = None
        self.results: list[StepResult] = []
        directory.mkdir(parents=True, exist_ok=True)

    def _log(self, task: str) -> Path:
        return self.directory / f"{task}.log"

    def _done(self, ok: bool) -> StepResult | None:
        """The running task ended: its result (a line on the console when it succeeded)."""
        if self.task is None:
            return None
        task, self.task = self.task, None
        retries = self.attempts[task] - 1
        notes = [f"{retries} retr{'y' if retries == 1 else 'ies'}"] if retries else []
        if self.said:  # the task's result, or on failure its error message
            notes.append(self.said)
        detail = "; ".join(notes)
        seconds = time.monotonic() - self.started
        result = StepResult(self.group, task, ok, seconds, self._log(task), detail)
        if ok:
            self.results.append(result)
            self.console.line(step_line(result))
        return result

    def feed(self, line: str) -> None:
        plain = ANSI.sub("", line)
        start = TASK_START.search(plain)
        if start:
            name = start.group(1)
            if self.task is not None and self.task != name:
                self._done(False)  # kfp moved on without reporting success
            if self.task != name:
                self.started = time.monotonic()
            self.task, self.said = name, ""
            self.attempts[name] = self.attempts.get(name, 0) + 1
            if self.handle is not None:
                self.handle.close()
            self.handle = self._log(name).open("a", encoding="utf-8")
        if self.handle is not None:
            self.handle.write(plain)
            self.handle.flush()
        said = plain.strip()
        if self.task is not None and said.startswith(f"{self.task}: "):
            self.said = said.removeprefix(f"{self.task}: ")
        done = TASK_DONE.search(plain)
        if done and done.group(1) == self.task and done.group(2) == "SUCCESS":
            self._done(True)

    def finish(self, ok: bool) -> StepResult | None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None
        return self._done(False)

    def current(self) -> tuple[Path, float] | None:
        return (self._log(self.task), self.started) if self.task else None


def _elapsed(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


def _last_line(path: Path | None) -> str:
    if path is None or not path.is_file():
        return ""
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - 4096))
        lines = [_plain(raw.decode(errors="replace")) for raw in handle]
    return next((line for line in reversed(lines) if line and not line.startswith("$ ")), "")


def shown(path: Path) -> str:
    """`path` relative to the repository when it is inside it."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def _plain(line: str) -> str:
    """A log line as a terminal would leave it: colours dropped, only the text after the last
    carriage return (progress bars), no control characters."""
    return CONTROL.sub("", ANSI.sub("", line.rstrip("\r\n")).split("\r")[-1]).strip()


def tail(path: Path, count: int = TAIL_LINES) -> list[str]:
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return [_plain(line) for line in lines[-count:]]


def run_step(
    step: Step, log: Path, console: Console, silence: Sequence[float] = SILENCE
) -> StepResult:
    """Run one step with its output in `log`; print its line (or its sub-steps' lines)."""
    watcher = step.watcher(log.with_suffix(""), console) if step.watcher else LineWatcher()
    started = time.monotonic()
    with log.open("w", encoding="utf-8") as handle:
        handle.write(f"$ {' '.join(step.argv)}\n")
        handle.flush()
        with subprocess.Popen(
            step.argv,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            bufsize=1,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **step.env},
            start_new_session=True,
        ) as process:

            def read() -> None:
                assert process.stdout is not None
                for line in process.stdout:
                    handle.write(line)
                    handle.flush()
                    watcher.feed(line)
                    console.log(line)

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            try:
                _watch(step, reader, watcher, log, console, started, silence)
            except KeyboardInterrupt:
                os.killpg(process.pid, signal.SIGTERM)
                raise
            code = process.wait()
    ok = code == 0
    failed = watcher.finish(ok)
    seconds = time.monotonic() - started
    if not ok and failed is not None:
        console.line(step_line(failed))
        return failed
    detail = ""
    if ok and step.detail is not None:
        detail = step.detail(log)
    elif not ok:
        detail = f"exit {code}"
    result = StepResult(step.group, step.name, ok, seconds, log, detail)
    if step.watcher is None or not ok:
        console.line(step_line(result))
    return result


def _watch(
    step: Step,
    reader: threading.Thread,
    watcher: LineWatcher,
    log: Path,
    console: Console,
    started: float,
    silence: Sequence[float],
) -> None:
    """Wait for the output to end; meanwhile say what is running when nothing was printed for
    a while (on a terminal: one status line, updated every second)."""
    quiet = 0  # "still running" lines since the last other line
    last_tick = console.printed_at
    while reader.is_alive():
        reader.join(timeout=1.0)
        if console.verbose or not reader.is_alive():
            continue
        if console.printed_at != last_tick:
            quiet = 0
        running, since = watcher.current() or (log, started)
        elapsed = _elapsed(time.monotonic() - since)
        note = f"  {step.group:<9} {running.stem:<11} still running, {elapsed}"
        last = _last_line(running)
        text = _clip(f"{note}: {last}" if last else note)
        if console.tty:
            console.status(text)
        elif time.monotonic() - console.printed_at >= silence[min(quiet, len(silence) - 1)]:
            console.line(text)
            last_tick = console.printed_at
            quiet += 1


def run_steps(
    steps: Iterable[Step],
    log_dir: Path,
    console: Console,
    after: Callable[[Step, StepResult], None] | None = None,
) -> list[StepResult]:
    """Run `steps` in order until one fails; a failure prints its log's tail."""
    results = []
    for step in steps:
        result = run_step(step, log_dir / f"{step.name}.log", console)
        results.append(result)
        if not result.ok:
            console.line()
            console.line(f"FAILED: {result.group} {result.name}; the end of {shown(result.log)}:")
            for line in tail(result.log):
                console.line("    " + line)
            break
        if after is not None:
            after(step, result)
    return results


# --- the demo -------------------------------------------------------------------------------------


def _count_lines(log: Path) -> str:
    files = [line for line in log.read_text(encoding="utf-8").splitlines()[1:] if line.strip()]
    return f"{len(files)} generated files"


def demo_steps(run: Path, make: str) -> list[Step]:
    venv = ROOT / ".venv" / "bin"
    registry = ROOT / ".run" / "registry"

    def validated(_log: Path) -> str:
        report = json.loads((run / "validate.json").read_text(encoding="utf-8"))
        valid = sum(1 for t in report["targets"] if t["ok"])
        argocd = "ok" if report["argocd"]["ok"] else "FAILED"
        return f"{valid} of {len(report['targets'])} builds valid, Argo CD {argocd}"

    return [
        Step("setup", "venv", [make, "--no-print-directory", "venv"]),
        Step("setup", "tools", [make, "--no-print-directory", "tools"]),
        Step("platform", "render", [str(venv / "platformgen"), "render"], detail=_count_lines),
        Step(
            "platform",
            "validate",
            [str(venv / "platformgen"), "validate", "--report", str(run / "validate.json")],
            detail=validated,
        ),
        Step(
            "ml",
            "pipeline",
            [
                str(venv / "mlp-pipeline"),
                "run",
                "--runs",
                str(ROOT / ".run" / "pipeline"),
                "--registry",
                str(registry),
                "--datasets",
                str(ROOT / ".run" / "datasets"),
                "--summary-json",
                str(run / "pipeline.json"),
            ],
            watcher=lambda directory, console: PipelineTasks(directory, console),
        ),  # fmt: skip
    ]


def serve_step(run: Path, pipeline: dict[str, Any]) -> Step:
    version = (pipeline.get("version") or {}).get("version", "latest")
    return Step(
        "serve",
        "smoke",
        [
            str(ROOT / ".venv" / "bin" / "python"), "-m", "mlp_serve.smoke",
            "--registry", str(ROOT / ".run" / "registry"), "--version", str(version),
        ],
        detail=_smoke_detail,
    )  # fmt: skip


def _smoke_detail(log: Path) -> str:
    served = _served(log) or {}
    return (
        f"v1 and v2 both predict {served.get('v1_prediction')}, "
        f"v1 request {served.get('v1_latency_ms')} ms"
    )


def _served(log: Path) -> dict[str, Any] | None:
    for line in reversed(log.read_text(encoding="utf-8").splitlines()):
        if line.startswith("{"):
            document: dict[str, Any] = json.loads(line)
            return document
    return None


def main(argv: Sequence[str] | None = None, stream: TextIO | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/demo.py", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="print the full logs too")
    parser.add_argument("--make", default=os.environ.get("MAKE", "make"), help="make to run")
    args = parser.parse_args(argv)
    console = Console(stream or sys.stdout, args.verbose)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    run = ROOT / ".run" / "demo" / stamp
    run.mkdir(parents=True, exist_ok=True)
    latest = run.parent / "latest"  # .run/demo/latest: the newest run's logs
    latest.unlink(missing_ok=True)
    latest.symlink_to(stamp, target_is_directory=True)
    env = {  # what the Makefile exports, for a run without make
        "PATH": os.pathsep.join(
            [str(ROOT / ".tools" / "bin"), str(ROOT / ".venv" / "bin"), os.environ.get("PATH", "")]
        ),
        "GOTOOLCHAIN": os.environ.get("GOTOOLCHAIN", "local"),
    }
    console.line(
        f"make demo: full logs in {shown(run)}/"
        + ("" if args.verbose else " (VERBOSE=1 prints them too)")
    )
    started = time.monotonic()
    results = Results()

    def after(step: Step, result: StepResult) -> None:
        if step.name == "validate":
            results.validation = json.loads((run / "validate.json").read_text(encoding="utf-8"))
        elif step.name == "pipeline":
            results.pipeline = json.loads((run / "pipeline.json").read_text(encoding="utf-8"))
        elif step.name == "smoke":
            results.served = _served(result.log)

    try:
        steps = [*demo_steps(run, args.make)]
        for step in steps:
            step.env = {**env, **step.env}
        results.steps = run_steps(steps, run, console, after)
        if results.steps[-1].ok and results.pipeline is not None:
            serve = serve_step(run, results.pipeline)
            serve.env = {**env, **serve.env}
            results.steps += run_steps([serve], run, console, after)
    except KeyboardInterrupt:
        console.line("interrupted")
        return 130
    ok = all(r.ok for r in results.steps)
    if ok:
        console.line()
        for line in summary_lines(results):
            console.line(line)
    elapsed = _elapsed(time.monotonic() - started)
    console.line(
        f"{'ok' if ok else 'FAILED'} in {elapsed}; full logs in {shown(run)}/"
        + ("" if ok else f" (the failing step: {shown(results.steps[-1].log)})")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
