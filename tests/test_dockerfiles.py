"""Every component image's Dockerfile: hadolint clean, plus the house rules hadolint does not know.

House rules: every FROM pinned (explicit tag or digest; never latest), multi-stage, the final
stage runs as UID 10001 (the spec's runAsUser), EXPOSE only in images that serve, and a
hadolint ignore pragma only with a comment line above it saying why.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from platformgen.emit.dockerfile import image_ports
from platformgen.spec.load import load_spec

from support import ROOT, tool

SPEC = load_spec(ROOT / "platform.yaml")
RUN_AS_USER = str(SPEC.defaults.run_as_user)
# Images that serve, and the ports the components running them declare; the rest expose nothing.
SERVING_PORTS = {
    Path(folder).name: {port for port, _ in image_ports(SPEC, build.repository)}
    for folder, build in (SPEC.builds.images.items() if SPEC.builds else [])
    if image_ports(SPEC, build.repository)
}
DOCKERFILES = sorted(ROOT.glob("components/*/Dockerfile")) + sorted(
    ROOT.glob("pipelines/Dockerfile")
)
IDS = [p.parent.relative_to(ROOT).as_posix() for p in DOCKERFILES]
# The golden trees' Dockerfiles cover what platform.yaml does not use (a digest-pinned base, two
# ports, quoted env, CMD): hadolint checks those renderings too.
LINTED = DOCKERFILES + sorted(ROOT.glob("tests/golden/*/**/Dockerfile"))
LINTED_IDS = [p.parent.relative_to(ROOT).as_posix() for p in LINTED]


def instructions(path: Path) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", path.read_text())
    found = []
    for line in joined.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        keyword, _, rest = stripped.partition(" ")
        found.append((keyword.upper(), rest.strip()))
    return found


def stages(path: Path) -> list[list[tuple[str, str]]]:
    split: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions(path):
        if keyword == "FROM":
            split.append([])
        if split:
            split[-1].append((keyword, rest))
    return split


def test_the_serving_images_are_among_them() -> None:
    assert {"components/serve", "components/drift"} <= set(IDS), IDS
    assert SERVING_PORTS == {"serve": {8080}, "drift": {8000, 8001}}


def test_every_dockerfile_is_rendered_from_the_spec() -> None:
    assert SPEC.builds is not None
    assert sorted(SPEC.builds.images) == sorted(IDS)


@pytest.mark.parametrize("dockerfile", LINTED, ids=LINTED_IDS)
def test_hadolint_finds_nothing(dockerfile: Path) -> None:
    hadolint = tool("hadolint")
    config = [p for p in (ROOT / ".hadolint.yaml", ROOT / ".hadolint.yml") if p.exists()]
    assert not config, f"{config[0].name}: repo-wide ignores are not allowed; explain inline"
    result = subprocess.run(
        [str(hadolint), "--no-color", "--format", "json", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    findings = json.loads(result.stdout or "[]")
    assert findings == [], "\n".join(
        f"{f['file']}:{f['line']} {f['code']} {f['message']}" for f in findings
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=IDS)
def test_ignores_are_explained(dockerfile: Path) -> None:
    lines = dockerfile.read_text().splitlines()
    for number, line in enumerate(lines):
        if re.match(r"\s*#\s*hadolint\s+(global\s+)?ignore=", line):
            above = lines[number - 1].strip() if number else ""
            assert above.startswith("#") and "hadolint" not in above and len(above) > 10, (
                f"{dockerfile}:{number + 1}: explain the ignore in a comment line above it"
            )


def house_rule_problems(dockerfile: Path, component: str) -> list[str]:
    """Every broken house rule, as one message each (empty when the Dockerfile is fine)."""
    problems = []
    split = stages(dockerfile)
    if len(split) < 2:
        problems.append("not a multi-stage build")
    names: set[str] = set()
    for stage in split:
        words = [w for w in stage[0][1].split() if not w.startswith("--platform=")]
        image = words[0] if words else ""
        if image not in names:
            if not ("@sha256:" in image or re.fullmatch(r"[\w./-]+:[\w.-]+", image)):
                problems.append(f"FROM {image} is not pinned to a tag or digest")
            elif image.endswith(":latest"):
                problems.append(f"FROM {image} uses latest")
        if len(words) == 3 and words[1].upper() == "AS":
            names.add(words[2])

    users = [rest for keyword, rest in (split[-1] if split else []) if keyword == "USER"]
    if not users:
        problems.append("the final stage has no USER (it would run as root)")
    elif users[-1].split(":")[0] != RUN_AS_USER:
        problems.append(f"USER {users[-1]}, expected {RUN_AS_USER} (the spec's runAsUser)")

    exposed = {
        int(port.split("/")[0])
        for keyword, rest in instructions(dockerfile)
        if keyword == "EXPOSE"
        for port in rest.split()
    }
    if exposed != SERVING_PORTS.get(component, set()):
        problems.append(
            f"EXPOSE {sorted(exposed)}, expected {sorted(SERVING_PORTS.get(component, set()))}"
        )

    secrets = re.compile(r"(PASSWORD|SECRET|TOKEN|ACCESS_KEY|PRIVATE_KEY)\w*\s*=", re.IGNORECASE)
    for keyword, rest in instructions(dockerfile):
        if keyword in {"ENV", "ARG"} and secrets.search(rest):
            problems.append(f"{keyword} {rest} looks like a secret")
    return problems


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=IDS)
def test_house_rules(dockerfile: Path) -> None:
    assert house_rule_problems(dockerfile, dockerfile.parent.name) == []


BAD = """FROM python
ENV API_TOKEN=abc
RUN pip install requests
EXPOSE 9999
"""


def test_the_checks_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text(BAD)
    assert house_rule_problems(bad, "train") == [
        "not a multi-stage build",
        "FROM python is not pinned to a tag or digest",
        "the final stage has no USER (it would run as root)",
        "EXPOSE [9999], expected []",
        "ENV API_TOKEN=abc looks like a secret",
    ]
    result = subprocess.run(
        [str(tool("hadolint")), "--no-color", "--format", "json", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    codes = {finding["code"] for finding in json.loads(result.stdout)}
    assert {"DL3006", "DL3013", "DL3042"} <= codes  # untagged FROM, unpinned pip, pip cache
    assert result.returncode != 0


@pytest.mark.parametrize("component", sorted(SERVING_PORTS))
def test_serving_requirements_are_exported_from_the_lock(component: str) -> None:
    from mlp_pipeline.requirements import export

    path = ROOT / "components" / component / "requirements.txt"
    assert path.read_text() == export(f"mlp-{component}"), (
        f"{path.relative_to(ROOT)} is stale: run `make requirements`"
    )
