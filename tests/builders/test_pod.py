"""Shared pod helpers: the policy-exception annotations and their inverse."""

from __future__ import annotations

from platformgen.waivers import exception_annotations, split_exception_annotations


def test_exception_annotations_read_back_with_the_other_annotations_apart() -> None:
    exceptions = sorted(
        [
            ("checkov", "CKV_K8S_35", "secrets come by reference"),
            ("checkov", "CKV_K8S_8", "queue-proxy=readiness only"),
            ("kube-linter", "job-ttl-seconds-after-finished", "content-named"),
            ("kube-score", "deployment-has-poddisruptionbudget", "dev is disposable"),
            ("kube-score", "pod-probes", "a batch pod"),
        ]
    )
    others = {"serving.kserve.io/deploymentMode": "Serverless", "team": "ml"}
    annotations = {**exception_annotations(exceptions), **others}

    assert split_exception_annotations(annotations) == (exceptions, others)


def test_no_exceptions_leaves_every_annotation() -> None:
    others = {"kube-score.platformgen.io/x": "not a waiver without kube-score/ignore"}
    assert split_exception_annotations(others) == ([], others)
