"""`make demo` (scripts/demo.py): the summary's shape on a fixture result, the pipeline's output
split per task, and the runner's lines on success, on a long quiet step and on failure, all on
cheap commands (the pipeline and the validation have their own tests)."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from support import FIXTURES, load_script

DEMO_FIXTURES = FIXTURES / "demo"


demo = load_script("demo")
console_module = sys.modules["demo_console"]  # imported by scripts/demo.py


def fixture_results() -> object:
    results = demo.Results()
    for name in ("validation", "pipeline", "served"):
        text = (DEMO_FIXTURES / f"{name}.json").read_text(encoding="utf-8")
        setattr(results, name, json.loads(text))
    return results


def test_summary_shape_is_pinned() -> None:
    lines = demo.summary_lines(fixture_results())
    expected = (DEMO_FIXTURES / "summary.txt").read_text(encoding="utf-8").splitlines()
    assert lines == expected, "\n".join(lines)
    assert max(len(line) for line in lines) <= console_module.WIDTH
    # the whole demo within 60 lines: first line, 4 setup and platform steps, 9 pipeline tasks,
    # the serve step, a blank line, the last line, and room for 3 "still running" lines
    assert len(lines) + 1 + 4 + 9 + 1 + 1 + 1 + 3 <= 60
    labels = [line.split()[0] for line in lines if line.startswith("  ") and line[2] != " "]
    for label in ("objects", "total", "validation", "model", "metrics", "gate", "registered"):
        assert label in labels
    assert labels[-1] == "served"


def test_summary_of_a_reused_version_says_so() -> None:
    results = fixture_results()
    results.pipeline["reused"] = True
    text = "\n".join(demo.summary_lines(results))
    assert "reused: trained earlier by pipeline run 57211886" in text
    assert "(decided when version 1 was trained)" in text


KFP_OUTPUT = """\
\x1b[96m'ingest'\x1b[0m
08:00:00.000 - INFO - Executing task \x1b[96m'ingest'\x1b[0m
    ingest: 1797 rows
    ingest: done, 1797 rows
08:00:01.000 - INFO - Task \x1b[96m'ingest'\x1b[0m finished with status \x1b[92mSUCCESS\x1b[0m
08:00:01.100 - INFO - Executing task \x1b[96m'train'\x1b[0m
    Epoch 1/30
08:00:02.000 - INFO - Executing task \x1b[96m'train'\x1b[0m
    Epoch 1/30 again
    train: out of memory
"""


def test_pipeline_output_is_split_per_task_with_a_line_each(tmp_path: Path) -> None:
    out = io.StringIO()
    tasks = demo.PipelineTasks(tmp_path / "pipeline", demo.Console(out, verbose=False, tty=False))
    for line in KFP_OUTPUT.splitlines(True):
        tasks.feed(line)
    failed = tasks.finish(False)
    assert (failed.name, failed.ok, failed.detail) == ("train", False, "1 retry; out of memory")
    assert (tmp_path / "pipeline" / "ingest.log").read_text().splitlines() == [
        "08:00:00.000 - INFO - Executing task 'ingest'",
        "    ingest: 1797 rows",
        "    ingest: done, 1797 rows",
        "08:00:01.000 - INFO - Task 'ingest' finished with status SUCCESS",
    ]
    assert "Epoch 1/30 again" in (tmp_path / "pipeline" / "train.log").read_text()
    [line] = out.getvalue().splitlines()
    assert line.split()[:3] == ["pipeline", "ingest", "ok"]
    assert line.endswith("s  done, 1797 rows")


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_steps_print_one_line_each_and_a_quiet_step_says_it_is_running(tmp_path: Path) -> None:
    out = io.StringIO()
    console = demo.Console(out, verbose=False, tty=False)
    steps = [
        demo.Step("setup", "fast", python("print('a'); print('b')"), detail=lambda log: "2 b"),
        demo.Step(
            "setup", "slow", python("import time; print('working', flush=True); time.sleep(3)")
        ),
    ]
    results = []
    for step in steps:
        results.append(
            console_module.run_step(step, tmp_path / f"{step.name}.log", console, (1.0,))
        )
    assert [r.ok for r in results] == [True, True]
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["setup", "fast", "ok", lines[0].split()[3], "2", "b"]
    assert "slow" in lines[1] and "still running, 1s: working" in lines[1]
    assert lines[-1].split()[:3] == ["setup", "slow", "ok"]
    assert (tmp_path / "fast.log").read_text().splitlines()[1:] == ["a", "b"]


def test_verbose_prints_the_logs(tmp_path: Path) -> None:
    out = io.StringIO()
    step = demo.Step("setup", "talk", python("print('hello')"))
    assert console_module.run_step(
        step, tmp_path / "talk.log", demo.Console(out, verbose=True, tty=False)
    ).ok
    assert "    | hello" in out.getvalue()


def test_a_failure_names_the_step_prints_its_tail_and_stops(tmp_path: Path) -> None:
    out = io.StringIO()
    console = demo.Console(out, verbose=False, tty=False)
    failing = "import sys\nfor n in range(40): print('line', n)\nsys.exit(3)"
    steps = [
        demo.Step("platform", "render", python(failing)),
        demo.Step("platform", "never", python("print('not run')")),
    ]
    results = demo.run_steps(steps, tmp_path, console)
    assert [(r.name, r.ok, r.detail) for r in results] == [("render", False, "exit 3")]
    text = out.getvalue()
    assert f"FAILED: platform render; the end of {tmp_path / 'render.log'}:" in text
    assert "    line 39" in text and "    line 14" not in text
    assert not (tmp_path / "never.log").exists()


def test_demo_main_fails_with_the_step_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "ROOT", tmp_path)
    monkeypatch.setattr(console_module, "ROOT", tmp_path)
    monkeypatch.setattr(
        demo,
        "demo_steps",
        lambda run, make: [demo.Step("setup", "venv", python("print('no python'); exit(1)"))],
    )
    out = io.StringIO()
    assert demo.main([], stream=out) == 1
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("make demo: ") and "full logs in .run/demo/" in lines[0]
    assert lines[1].split()[:3] == ["setup", "venv", "FAILED"]
    assert "no python" in out.getvalue()
    assert lines[-1].startswith("FAILED in ") and "venv.log" in lines[-1]
    assert (tmp_path / ".run" / "demo" / "latest" / "venv.log").is_file()


def test_a_failing_pipeline_task_is_named_with_the_tail_of_its_own_log(tmp_path: Path) -> None:
    out = io.StringIO()
    console = demo.Console(out, verbose=False, tty=False)
    fake_kfp = f"import sys; sys.stdout.write({KFP_OUTPUT!r}); sys.exit(1)"
    step = demo.Step(
        "ml", "pipeline", python(fake_kfp), watcher=lambda d, c: demo.PipelineTasks(d, c)
    )
    [result] = demo.run_steps([step], tmp_path, console)
    assert (result.group, result.name, result.ok) == ("pipeline", "train", False)
    lines = out.getvalue().splitlines()
    assert [line.split()[:3] for line in lines[:2]] == [
        ["pipeline", "ingest", "ok"],
        ["pipeline", "train", "FAILED"],
    ]
    assert f"FAILED: pipeline train; the end of {tmp_path / 'pipeline' / 'train.log'}:" in lines
    assert lines[1].endswith("s  1 retry; out of memory")
    assert lines[-1] == "    train: out of memory"
