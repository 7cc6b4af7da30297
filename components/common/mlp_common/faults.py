"""Deliberate transient-fault injection, for proving that pipeline retries work.

Set ``MLP_FAULT_INJECTION=<step>:<failures>:<state-dir>`` and the named step raises
:class:`~mlp_common.step.TransientError` on its first ``<failures>`` attempts. Attempts are counted
in ``<state-dir>/<step>.attempts`` so the count survives the process restarts a retry causes.
Unset (the default), this is a no-op.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlp_common.step import TransientError

FAULT_ENV = "MLP_FAULT_INJECTION"


def maybe_fail(step: str) -> None:
    """Raise ``TransientError`` if fault injection is configured for ``step`` and not used up."""
    spec = os.environ.get(FAULT_ENV, "")
    if not spec:
        return
    name, _, rest = spec.partition(":")
    failures, _, state_dir = rest.partition(":")
    if name != step:
        return
    if not failures.isdigit() or not state_dir:
        raise ValueError(f"{FAULT_ENV}={spec!r}: expected <step>:<failures>:<state-dir>")
    counter = Path(state_dir) / f"{step}.attempts"
    counter.parent.mkdir(parents=True, exist_ok=True)
    attempts = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(attempts))
    if attempts <= int(failures):
        raise TransientError(f"injected transient failure (attempt {attempts} of {failures})")
