"""Content-named Jobs (builders.job) select their own Pods, so the apiserver generates nothing in
their immutable fields (the real apiserver's side is tests/e2e/test_helm_oci.py)."""

from __future__ import annotations

import copy

import pytest

from platformgen.builders import build_platform
from platformgen.builders.job import JOB_NAME_LABELS
from platformgen.naming import Manifest, content_name
from platformgen.spec.load import load_spec

from support import ROOT, SPECS

SPEC_FILES = {"full": SPECS / "full.yaml", "platform": ROOT / "platform.yaml"}


def rendered(case: str, kind: str) -> list[Manifest]:
    spec = load_spec(SPEC_FILES[case])
    return [
        m
        for env in sorted(spec.environments)
        for group in build_platform(spec, env).values()
        for m in group
        if m["kind"] == kind
    ]


@pytest.mark.parametrize("case", sorted(SPEC_FILES))
def test_a_job_selects_its_own_pods_by_its_name(case: str) -> None:
    jobs = rendered(case, "Job")
    assert jobs, f"{case} renders no Job"
    for job in jobs:
        name, spec = job["metadata"]["name"], job["spec"]
        labels = spec["template"]["metadata"]["labels"]
        assert spec["manualSelector"] is True, name
        assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/job-name": name}}
        assert {label: labels.get(label) for label in JOB_NAME_LABELS} == {
            "batch.kubernetes.io/job-name": name,
            "job-name": name,
        }
        assert (
            labels["app.kubernetes.io/name"] == job["metadata"]["labels"]["app.kubernetes.io/name"]
        ), "the component's selector labels stay (NetworkPolicies select them)"


@pytest.mark.parametrize("case", sorted(SPEC_FILES))
def test_the_name_is_the_hash_of_the_spec_without_the_name_labels(case: str) -> None:
    """The labels are a function of the name, so the name hashes everything else (including
    `manualSelector`: a Job rendered with a generated selector had another name)."""
    for job in rendered(case, "Job"):
        spec = copy.deepcopy(job["spec"])
        del spec["selector"]
        for label in JOB_NAME_LABELS:
            del spec["template"]["metadata"]["labels"][label]
        component = job["metadata"]["labels"]["app.kubernetes.io/name"]
        assert job["metadata"]["name"] == content_name(component, spec)
        del spec["manualSelector"]
        assert job["metadata"]["name"] != content_name(component, spec)


def test_a_cronjob_leaves_its_jobs_selectors_to_the_apiserver() -> None:
    """The apiserver refuses `manualSelector` in a CronJob's jobTemplate, and each of its Jobs
    is created by the CronJob controller, never patched by Helm or GitOps."""
    cronjobs = rendered("full", "CronJob")
    assert cronjobs
    for cronjob in cronjobs:
        job_spec = cronjob["spec"]["jobTemplate"]["spec"]
        assert "manualSelector" not in job_spec and "selector" not in job_spec
        assert not set(JOB_NAME_LABELS) & set(job_spec["template"]["metadata"]["labels"])
