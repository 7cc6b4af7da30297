"""What the image runs in a Spark pod on Kubernetes: the driver and the executors of a
SparkApplication (``builders/spark_application.py``) are made by spark-submit from the
component's image, with the container arguments ``driver <spark-submit arguments>`` or
``executor``, and the rest in environment variables. Spark's own image answers them with its
``entrypoint.sh``; this is the same contract for this image (``python -m mlp_preprocess driver
...``), on the pinned pyspark (``SPARK_HOME``) and the pinned Java (:mod:`mlp_preprocess.java`):

- ``driver``: spark-submit in client mode inside the driver pod, bound to the pod's address
  (``SPARK_DRIVER_BIND_ADDRESS``); it runs ``spark.mainApplicationFile`` (this package's
  ``__main__.py``), whose Spark session then asks the Kubernetes API for executors.
- ``executor``: the JVM of one executor (``KubernetesExecutorBackend``) with the options
  and identity the driver put in its environment (``SPARK_JAVA_OPT_<n>``, ``SPARK_EXECUTOR_*``).

The process is replaced (``exec``), so the JVM gets the pod's signals.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from mlp_preprocess.java import use_pinned_java

ROLES = ("driver", "executor")
EXECUTOR_BACKEND = "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend"
_JAVA_OPT = re.compile(r"^SPARK_JAVA_OPT_([0-9]+)$")


def spark_home() -> Path:
    """The Spark distribution inside the pinned pyspark wheel (bin/, jars/)."""
    import pyspark

    return Path(pyspark.__file__).parent


def driver_command(args: Sequence[str], environ: Mapping[str, str], home: Path) -> list[str]:
    """spark-submit in client mode, bound to the driver pod's address."""
    return [
        "bash",
        str(home / "bin" / "spark-submit"),
        "--conf",
        f"spark.driver.bindAddress={environ['SPARK_DRIVER_BIND_ADDRESS']}",
        "--deploy-mode",
        "client",
        *args,
    ]


def executor_command(environ: Mapping[str, str], home: Path, java: Path) -> list[str]:
    """The executor JVM, as Spark's entrypoint.sh starts it (`java`: JAVA_HOME)."""
    options = sorted(
        (int(m.group(1)), value)
        for name, value in environ.items()
        if (m := _JAVA_OPT.match(name)) is not None
    )
    classpath = [str(home / "conf"), str(home / "jars" / "*")]
    classpath += [
        environ[k] for k in ("SPARK_EXTRA_CLASSPATH", "SPARK_DIST_CLASSPATH") if k in environ
    ]
    memory = environ["SPARK_EXECUTOR_MEMORY"]
    return [
        str(java / "bin" / "java"),
        *(value for _, value in options),
        f"-Xms{memory}",
        f"-Xmx{memory}",
        "-cp",
        ":".join(classpath),
        EXECUTOR_BACKEND,
        *("--driver-url", environ["SPARK_DRIVER_URL"]),
        *("--executor-id", environ["SPARK_EXECUTOR_ID"]),
        *("--cores", environ["SPARK_EXECUTOR_CORES"]),
        *("--app-id", environ["SPARK_APPLICATION_ID"]),
        *("--hostname", environ["SPARK_EXECUTOR_POD_IP"]),
        *("--resourceProfileId", environ.get("SPARK_RESOURCE_PROFILE_ID", "0")),
        *("--podName", environ["SPARK_EXECUTOR_POD_NAME"]),
    ]


def run(role: str, args: Sequence[str]) -> None:
    """Replace this process with the Spark pod's `role` (never returns)."""
    environ = dict(os.environ)
    java = use_pinned_java(environ)
    home = spark_home()
    environ["SPARK_HOME"] = str(home)
    if role == "driver":
        command = driver_command(args, environ, home)
    else:
        command = executor_command(environ, home, java)
    os.execvpe(command[0], command, environ)
