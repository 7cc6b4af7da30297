"""StepCli: the one shell every step CLI runs in (usage, logging, env defaults, run_step)."""

import argparse
import os

import pytest
from mlp_common.step import StepCli, StepError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--count", type=int, required=True, help="how many")


def run(args: argparse.Namespace) -> None:
    if args.count < 0:
        raise StepError(f"--count {args.count}: must be at least 0")
    print(f"count={args.count} verbose={args.verbose}")


STEP = StepCli("demo", "A demo step.", add_arguments, run, environment={"MLP_DEMO_ENV": "on"})


def test_the_core_runs_and_the_status_is_zero(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLP_DEMO_ENV", raising=False)
    assert STEP.main(["--count", "3", "-vv"]) == 0
    assert capsys.readouterr().out == "count=3 verbose=2\n"
    assert os.environ["MLP_DEMO_ENV"] == "on"


def test_environment_defaults_never_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLP_DEMO_ENV", "set by the pod")
    assert STEP.main(["--count", "0"]) == 0
    assert os.environ["MLP_DEMO_ENV"] == "set by the pod"


def test_a_step_error_is_one_line_and_status_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert STEP.main(["--count", "-1"]) == 1
    assert capsys.readouterr().err == "demo: --count -1: must be at least 0\n"


def test_bad_usage_exits_two_with_the_step_program_name(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        STEP.main([])
    assert exited.value.code == 2
    assert capsys.readouterr().err.startswith("usage: mlp-demo [-h] --count COUNT [-v]\n")


def test_help_lists_the_step_arguments_before_verbose() -> None:
    help_text = STEP.parser().format_help()
    assert "A demo step." in help_text
    assert help_text.index("--count") < help_text.index("--verbose")
