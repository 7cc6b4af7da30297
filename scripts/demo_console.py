"""The demos' console (`make demo`, `make demo-cluster`): each step a command whose output goes
to its log, one line per step (group, name, status, wall seconds, a short result), a "still
running" line on long steps (on a terminal, one line updated in place instead), the tail of the
failing step's log on failure. Standard library only (the demo runs with the system Python).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

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
PHASE_START = re.compile(r"^==> (\S+) (\S+)$")
PHASE_DONE = re.compile(r"^<== (\S+) (\S+) (ok|FAILED)(?: (.*))?$")
"""A program that reports its own stages prints `==> <group> <name>` when one starts and
`<== <group> <name> ok|FAILED [detail]` when it ends (scripts/demo_cluster_run.py)."""


@dataclass
class StepResult:
    group: str
    name: str
    ok: bool
    seconds: float
    log: Path
    detail: str = ""


def step_line(result: StepResult) -> str:
    status = "ok" if result.ok else "FAILED"
    line = f"  {result.group:<9} {result.name:<11} {status:<7}{result.seconds:7.1f}s"
    return _clip(f"{line}  {result.detail}" if result.detail else line)


def _clip(line: str) -> str:
    return line if len(line) <= WIDTH else line[: WIDTH - 3] + "..."


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


class MarkedSteps(LineWatcher):
    """Splits a program's output at its `==> group name` / `<== group name ok|FAILED detail`
    lines (PHASE_START, PHASE_DONE) into `<dir>/<name>.log`, one console line per stage."""

    def __init__(self, directory: Path, console: Console) -> None:
        self.directory = directory
        self.console = console
        self.stage: tuple[str, str] | None = None
        self.started = 0.0
        self.handle: TextIO | None = None
        self.failed: StepResult | None = None
        directory.mkdir(parents=True, exist_ok=True)

    def _log(self, name: str) -> Path:
        return self.directory / f"{name}.log"

    def feed(self, line: str) -> None:
        plain = _plain(line)
        start = PHASE_START.match(plain)
        if start:
            self._close()
            self.stage = (start.group(1), start.group(2))
            self.started = time.monotonic()
            self.handle = self._log(start.group(2)).open("w", encoding="utf-8")
        if self.handle is not None:
            self.handle.write(line)
            self.handle.flush()
        done = PHASE_DONE.match(plain)
        if done and self.stage == (done.group(1), done.group(2)):
            ok = done.group(3) == "ok"
            group, name = self.stage
            result = StepResult(group, name, ok, time.monotonic() - self.started,
                                self._log(name), done.group(4) or "")  # fmt: skip
            self._close()
            self.stage = None
            if ok:
                self.console.line(step_line(result))
            elif self.failed is None:  # the first failure is the cause
                self.failed = result

    def _close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None

    def finish(self, ok: bool) -> StepResult | None:
        self._close()
        if self.failed is None and self.stage is not None:  # ended inside a stage
            group, name = self.stage
            self.failed = StepResult(group, name, False, time.monotonic() - self.started,
                                     self._log(name), "ended here")  # fmt: skip
        return self.failed if not ok else None

    def current(self) -> tuple[Path, float] | None:
        return (self._log(self.stage[1]), self.started) if self.stage else None


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
