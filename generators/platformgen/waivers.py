"""Policy waivers as annotations: how a (tool, check, reason) waiver is written on an object
for checkov, kube-linter and kube-score (never read back: the builders record which objects
carry which waivers, builders.build_component_waived). The chart's `policyExceptions` helper
(emit/helm/_helpers.tpl) writes the same annotations in Go template text."""

from __future__ import annotations

Waiver = tuple[str, str, str]
"""(tool, check, reason)."""

KUBE_LINTER_IGNORE = "ignore-check.kube-linter.io/"
CHECKOV_SKIP = "checkov.io/skip"
KUBE_SCORE_IGNORE = "kube-score/ignore"
KUBE_SCORE_REASON = "kube-score.platformgen.io/"
"""kube-score's ignore annotation takes bare ids; each id's reason goes in its own annotation."""


def exception_annotations(exceptions: list[tuple[str, str, str]]) -> dict[str, str]:
    """Annotations that waive policy checks, each with its written reason."""
    out: dict[str, str] = {}
    checkov = [(check, reason) for tool, check, reason in exceptions if tool == "checkov"]
    for i, (check, reason) in enumerate(checkov, start=1):
        out[f"{CHECKOV_SKIP}{i}"] = f"{check}={reason}"
    for tool, check, reason in exceptions:
        if tool == "kube-linter":
            out[f"{KUBE_LINTER_IGNORE}{check}"] = reason
    score = [(check, reason) for tool, check, reason in exceptions if tool == "kube-score"]
    if score:
        out[KUBE_SCORE_IGNORE] = ",".join(check for check, _ in score)
        out.update({f"{KUBE_SCORE_REASON}{check}": reason for check, reason in score})
    return out
