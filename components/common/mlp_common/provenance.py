"""Provenance facts recorded with every output that matters: code version, timestamps, redacted
source descriptions and the component images of a cluster run."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import subprocess
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from mlp_common import contracts
from mlp_common.step import StepError

CODE_VERSION_ENV = contracts.CODE_VERSION
UNKNOWN = "unknown"
REDACTED = "***"
URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"`<>]+")
SECRET_PARAMETER = re.compile(
    r"pass|pwd|secret|token|key|signature|credential|auth|session", re.IGNORECASE
)


def utc_now() -> str:
    """The current UTC time as an RFC 3339 string with second precision (``...Z``)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _git(where: Path, *args: str, timeout: float = 10) -> bytes:
    """`git ARGS` run in `where`: its standard output (raises OSError/SubprocessError)."""
    return subprocess.run(
        ["git", *args], cwd=where, capture_output=True, check=True, timeout=timeout
    ).stdout


def _ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false")


def code_version(start: str | os.PathLike[str] | None = None) -> str:
    """The code version: ``$MLP_CODE_VERSION`` if set (container builds bake it in), else the
    git sha of the checkout containing ``start`` (default: this file), with ``-dirty`` appended
    when the work tree has changes, else ``"unknown"``."""
    baked = os.environ.get(CODE_VERSION_ENV)
    if baked:
        return baked
    where = Path(start) if start is not None else Path(__file__).resolve().parent
    try:
        sha = _git(where, "rev-parse", "HEAD").decode().strip()
        dirty = _git(where, "status", "--porcelain", "--untracked-files=no").strip()
        if dirty:
            diff = _git(where, "diff", "HEAD", "--binary", timeout=30)
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN
    # A dirty tree names its changes too, so two different uncommitted edits never share a version.
    return f"{sha}-dirty.{hashlib.sha256(diff).hexdigest()[:12]}" if dirty else sha


# The code that determines a trained model's bytes: the training key names its version, so a commit
# elsewhere (docs, serving, the gate) does not force a retrain.
TRAINING_CODE = (
    "components/common",
    "components/ingest",
    "components/preprocess",
    "components/train",
)


def training_code_version(start: str | os.PathLike[str] | None = None) -> str:
    """The version of the training code: ``$MLP_CODE_VERSION`` if set (images bake it in), else
    ``tree:<hash>`` over the committed trees of :data:`TRAINING_CODE` plus their uncommitted
    changes, else ``unknown`` (refused when ``$CI`` is set)."""
    baked = os.environ.get(CODE_VERSION_ENV)
    if baked:
        return baked
    where = Path(start) if start is not None else Path(__file__).resolve().parent
    try:
        top = Path(_git(where, "rev-parse", "--show-toplevel").decode().strip())
        trees = _git(top, "ls-tree", "HEAD", "--", *TRAINING_CODE, timeout=30)
        diff = _git(top, "diff", "HEAD", "--binary", "--", *TRAINING_CODE, timeout=30)
    except (OSError, subprocess.SubprocessError):
        version = UNKNOWN
    else:
        digest = hashlib.sha256(trees + b"\0" + diff).hexdigest()
        version = f"tree:{digest[:16]}"
    if version == UNKNOWN and _ci():
        raise StepError(
            f"training code version unknown (no ${CODE_VERSION_ENV}, no git checkout); "
            "CI is set, so refusing to plan a run without it"
        )
    return version


def recorded_code_version(start: str | os.PathLike[str] | None = None) -> str:
    """:func:`code_version`, refusing ``unknown`` when ``$CI`` is set: a CI build must record
    which code produced a model (bake ``MLP_CODE_VERSION`` into the image or build from git)."""
    version = code_version(start)
    if version == UNKNOWN and _ci():
        raise StepError(
            f"code version unknown (no ${CODE_VERSION_ENV}, no git checkout); "
            "CI is set, so refusing to record a model without its code version"
        )
    return version


def redact_url(url: str) -> str:
    """``url`` with the password of its user info and secret-looking query values replaced;
    everything else is kept byte for byte."""
    parts = urlsplit(url)
    redacted = url
    if "@" in parts.netloc:
        userinfo, host = parts.netloc.rsplit("@", 1)
        if ":" in userinfo:
            user = userinfo.split(":", 1)[0]
            redacted = redacted.replace(f"//{parts.netloc}", f"//{user}:{REDACTED}@{host}", 1)
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        if any(SECRET_PARAMETER.search(key) for key, _ in pairs):
            query = urlencode(
                [(k, REDACTED if SECRET_PARAMETER.search(k) else v) for k, v in pairs], safe="*"
            )
            redacted = redacted.replace(f"?{parts.query}", f"?{query}", 1)
    return redacted


def redact_credentials(text: str) -> str:
    """``text`` (a source URL, or a query that mentions URLs) with credentials in URLs redacted."""
    return URL.sub(lambda match: redact_url(match.group(0)), text)


def on_cluster() -> bool:
    """True inside a Kubernetes pod (the kubelet sets ``KUBERNETES_SERVICE_HOST``)."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def cluster_images(images: dict[str, str]) -> dict[str, str] | None:
    """The component image references to record: ``images`` on a cluster, None elsewhere (a
    local run executes the packages in this checkout, not the images)."""
    return dict(sorted(images.items())) if on_cluster() else None
