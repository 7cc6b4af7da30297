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


# --- make demo-cluster (scripts/demo_cluster.py; its cluster part is tests/e2e/node_platform.py,
# run for real by tests/e2e/test_node_platform.py) -------------------------------------------------

demo_cluster = load_script("demo_cluster")
demo_cluster_run = load_script("demo_cluster_run")


def _fake_cluster_part(fail_in: str | None) -> str:
    """A program speaking scripts/demo_cluster_run.py's stage markers through its own
    phase_printer (the same code the real run uses), failing in stage `fail_in`."""
    return f"""
import json, sys
sys.path.insert(0, {str(demo_cluster_run.ROOT / "scripts")!r})
import demo_cluster_run as run
phase = run.phase_printer(sys.stdout)
try:
    for group, name in [("cluster", "node"), ("platform", "apply"), ("serve", "answer")]:
        with phase(group, name):
            print("working on", name)
            if name == {fail_in!r}:
                raise AssertionError("the model server is not Ready\\nmore")
            if name == "answer":
                run.DETAILS[(group, name)] = "v1 and v2 both predict 7 through the ClusterIP"
finally:
    with phase("cluster", "teardown"):
        pass
print(json.dumps({{"model": "digits", "version": "1", "v1_prediction": "7",
                  "v2_prediction": "7", "expected": "7", "service": "s.ns.svc"}}))
"""


def _cluster_step(fail_in: str | None) -> object:
    return demo.Step(
        "cluster",
        "platform",
        python(_fake_cluster_part(fail_in)),
        watcher=lambda d, c: console_module.MarkedSteps(d, c),
    )


def test_the_cluster_part_prints_one_line_per_stage(tmp_path: Path) -> None:
    out = io.StringIO()
    console = demo.Console(out, verbose=False, tty=False)
    [result] = demo.run_steps([_cluster_step(None)], tmp_path, console)
    assert result.ok
    lines = out.getvalue().splitlines()
    assert [line.split()[:3] for line in lines] == [
        ["cluster", "node", "ok"],
        ["platform", "apply", "ok"],
        ["serve", "answer", "ok"],
        ["cluster", "teardown", "ok"],
    ]
    assert lines[2].endswith("s  v1 and v2 both predict 7 through the ClusterIP")
    assert (tmp_path / "platform" / "apply.log").read_text().splitlines() == [
        "==> platform apply",
        "working on apply",
        "<== platform apply ok",
    ]
    assert demo_cluster.answer(tmp_path / "platform.log")["v1_prediction"] == "7"


def test_a_failing_stage_is_named_after_the_teardown_ran(tmp_path: Path) -> None:
    out = io.StringIO()
    console = demo.Console(out, verbose=False, tty=False)
    [result] = demo.run_steps([_cluster_step("apply")], tmp_path, console)
    assert (result.group, result.name, result.ok) == ("platform", "apply", False)
    assert result.detail == "the model server is not Ready"
    lines = out.getvalue().splitlines()
    assert [line.split()[:3] for line in lines[:3]] == [
        ["cluster", "node", "ok"],
        ["cluster", "teardown", "ok"],
        ["platform", "apply", "FAILED"],
    ]
    assert f"FAILED: platform apply; the end of {tmp_path / 'platform' / 'apply.log'}:" in lines
    assert "    working on apply" in lines


def test_demo_cluster_main_runs_the_steps_and_summarises_the_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo_cluster, "ROOT", tmp_path)
    monkeypatch.setattr(console_module, "ROOT", tmp_path)
    monkeypatch.setattr(
        demo_cluster,
        "cluster_steps",
        lambda run, make, keep: [
            demo.Step("setup", "venv", python("print('ok')")),
            _cluster_step(None),
        ],
    )
    out = io.StringIO()
    assert demo_cluster.main([], stream=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("make demo-cluster: full logs in .run/demo-cluster/")
    assert "  answer     v1 7, v2 7 (the local run: 7)" in lines
    assert lines[-1].startswith("ok in ")
    assert max(len(line) for line in lines) <= console_module.WIDTH


def test_demo_cluster_steps_end_with_the_cluster_part() -> None:
    steps = demo_cluster.cluster_steps(Path("/run"), "make", keep=True)
    assert [(s.group, s.name) for s in steps][-1] == ("cluster", "platform")
    assert steps[-1].argv[-1] == "--keep" and "demo_cluster_run.py" in steps[-1].argv[1]
    assert {"node-tools", "controllers-tools", "registry-tools"} <= set(steps[1].argv)
