"""The model registry: versioned model directories on a filesystem, with two pointers.

Layout under the registry root (a local path, a ``file://`` URI, or an object-store URI such as
``s3://bucket/registry``; S3-compatible stores use ``AWS_ENDPOINT_URL``)::

    models/<model>/
        versions/<n>/              one immutable version, n = 1, 2, 3, ...
            metadata.json          see below; its appearance commits the version
            model.keras            the Keras model          } on a filesystem, in the version;
            saved_model/           the exported SavedModel  } on an object store, under
            ...                    other files (metrics,    } artifacts/<id>/ (metadata.json
                                   plots, statistics)       } names it as "artifacts")
        artifacts/<id>/            object stores: a version's files, uploaded before it exists
        production                 the version serving traffic on its first line, then the
                                   promotion log (one JSON object a line); absent = none yet

``latest`` is the highest version number; it is derived from the listing, never stored, so two
registrations cannot leave it behind.

``metadata.json`` holds at least::

    {"model", "version", "parent" (the production version the candidate was compared with, or
     null), "created_at", "params", "metrics", "dataset": {"content_hash", ...}, "code_version",
     "pipeline_run_id", "gate": {"decision": "promote"|"candidate"|"refused", ...}}

Atomicity. On a filesystem a version is built in a temporary directory next to ``versions/`` and
renamed to ``versions/<n>``; a crash leaves at most a hidden ``.tmp`` directory, never a half
version, and two writers racing for the same ``n`` cannot both win the rename; the loser retries
with ``n + 1``. On an object store (no rename) the version's files go first under a prefix no other
writer uses (``artifacts/<random id>/``); then ``versions/<n>/metadata.json`` is created with a
conditional ``PutObject`` (``If-None-Match: *``). The store creates it for exactly one writer and
answers ``412 Precondition Failed`` to the others, which retry with ``n + 1``. A crash before the
commit leaves only unreferenced artifacts, never a half version.

Promotion is a compare-and-swap of the ``production`` object (a ``flock`` on a filesystem, a
conditional ``PutObject`` with ``If-Match`` on S3; see :mod:`mlp_common.storage`), and the
promotion record is part of that same write, so the pointer and its log can never disagree. A
promotion that names the production version it was decided against is refused when production
moved meanwhile; promoting the version that already serves succeeds without a second record, so
a retried promotion step is harmless.

``ModelVersion.path`` is always a local directory: versions in an object store are downloaded
once into a cache (``$MLP_CACHE_DIR``, default ``<tmp>/mlp-cache``); versions never change.

Stable read API (used by the serving component)::

    registry = ModelRegistry(root)
    registry.list_models() -> list[str]
    registry.list_versions(model) -> list[int]
    registry.get(model, ref) -> ModelVersion       ref: int, "3", "latest" or "production"
    registry.metadata(model, ref) -> (number, metadata.json), no download
    registry.latest(model) / registry.production(model) -> ModelVersion | None
    ModelVersion.path / .keras_path / .saved_model_path / .metadata / .version

Write API (used by ``register``): ``register(model, source_dir, metadata, parent=...,
promote=False)`` and ``promote(model, version, reason, expected=<production version compared
with>)``.

Promotion policy: :func:`promotion_problems` is the one check of whether a version may serve
production (its gate decided ``promote``, and its metrics meet any floors the caller sets). The
register step's ``--apply-gate``, ``mlp-registry promote`` and ``platformgen promote-model``
(which pins the version an environment serves in ``platform.yaml``) all call it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlp_common.files import dumps_json, write_text_atomic
from mlp_common.provenance import utc_now
from mlp_common.step import StepError
from mlp_common.storage import LocalStore, RemoteStore, is_remote, local_path

MODEL_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
METADATA_FILE = "metadata.json"
KERAS_FILE = "model.keras"
SAVED_MODEL_DIR = "saved_model"
POINTERS = ("latest", "production")
ARTIFACTS = "artifacts"
LEGACY_PROMOTIONS = "promotions.jsonl"


CURRENT = "current"
"""``promote(expected=CURRENT)``: compare against the production pointer as read just before."""


class RegistryError(StepError):
    """A registry operation failed for a reason the user can fix (unknown model or version)."""


class PromotionConflict(RegistryError):
    """Production is not the version the promotion expected: another promotion came first."""


class PromotionRefused(RegistryError):
    """The version may not be promoted: its gate did not pass, or a metric is below a floor."""


@dataclass(frozen=True)
class ModelVersion:
    """One registered version. ``metadata`` is the parsed ``metadata.json``."""

    model: str
    version: int
    path: Path
    metadata: dict[str, Any]
    uri: str = ""
    """Where the version lives (equal to ``path`` for filesystem registries)."""

    @property
    def keras_path(self) -> Path:
        return self.path / KERAS_FILE

    @property
    def saved_model_path(self) -> Path:
        return self.path / SAVED_MODEL_DIR

    @property
    def parent(self) -> int | None:
        parent = self.metadata.get("parent")
        return int(parent) if parent is not None else None


GATE_PASSED = "promote"
"""The gate decision (``metadata.json`` ``gate.decision``) that lets a version serve production."""


def promotion_problems(
    version: ModelVersion, min_metrics: Mapping[str, float] | None = None
) -> list[str]:
    """Why ``version`` may not serve production; empty when it may.

    A version qualifies when its gate decided ``promote`` (the problem quotes the gate's verdict
    and reason otherwise) and every metric in ``min_metrics`` (names of ``metadata.json``
    ``metrics``, e.g. ``test_accuracy``) is present and at least its floor."""
    gate = version.metadata.get("gate") or {}
    problems = []
    decision = gate.get("decision")
    if decision != GATE_PASSED:
        verdict = gate.get("verdict") or decision or "no gate decision recorded"
        reason = gate.get("reason")
        problems.append(f"its gate did not pass: {verdict}" + (f" ({reason})" if reason else ""))
    metrics = version.metadata.get("metrics") or {}
    for name, floor in sorted((min_metrics or {}).items()):
        value = metrics.get(name)
        if not isinstance(value, int | float) or isinstance(value, bool):
            problems.append(f"metric {name!r} is not recorded (floor {floor:g})")
        elif value < floor:
            problems.append(f"{name} {value:.4f} is below the floor {floor:.4f}")
    return problems


def check_promotion(version: ModelVersion, min_metrics: Mapping[str, float] | None = None) -> None:
    """Raise :class:`PromotionRefused` naming every :func:`promotion_problems` of ``version``."""
    problems = promotion_problems(version, min_metrics)
    if problems:
        raise PromotionRefused(
            f"model {version.model!r} version {version.version} may not be promoted: "
            + "; ".join(problems)
        )


def training_key(content_hash: str, params: dict[str, Any], code_version: str) -> str:
    """``sha256:<hex>`` naming one training: the data (content hash), every parameter that
    changes the model (split and hyperparameters, seeds included) and the code version. A version
    whose ``training_key`` equals a new run's would be retrained bit for bit; reuse it instead."""
    document = {"code_version": code_version, "dataset": content_hash, "params": params}
    return "sha256:" + hashlib.sha256(dumps_json(document).encode()).hexdigest()


class ModelRegistry:
    """A filesystem model registry rooted at ``root``. See the module docstring for the layout."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        text = os.fspath(root)
        self.store: LocalStore | RemoteStore
        if is_remote(text):
            self.store = RemoteStore(text)
            self.root: Path | str = self.store.uri
        else:
            self.root = local_path(text)
            self.store = LocalStore(self.root)

    # -- paths (relative to the root) ------------------------------------------------------
    @staticmethod
    def _model(model: str) -> str:
        if not MODEL_NAME.match(model) or len(model) > 63:
            raise RegistryError(f"model name {model!r}: must be DNS-1123 (a-z, 0-9, '-'), <= 63")
        return f"models/{model}"

    def _versions(self, model: str) -> str:
        return f"{self._model(model)}/versions"

    # -- read API --------------------------------------------------------------------------
    def list_models(self) -> list[str]:
        """Names of models with at least one version, sorted."""
        return sorted(
            name
            for name in self.store.list_dir("models")
            if MODEL_NAME.match(name) and self.list_versions(name)
        )

    def list_versions(self, model: str) -> list[int]:
        """Version numbers of ``model``, ascending. Hidden (in-progress) entries are ignored."""
        versions = self._versions(model)
        return sorted(
            int(name)
            for name in self.store.list_dir(versions)
            if name.isdigit() and self.store.is_file(f"{versions}/{name}/{METADATA_FILE}")
        )

    def pointer(self, model: str, name: str) -> int | None:
        """The version a pointer (``latest`` or ``production``) names, or None if unset."""
        if name not in POINTERS:
            raise RegistryError(f"unknown pointer {name!r}; expected one of {', '.join(POINTERS)}")
        if name == "latest":
            versions = self.list_versions(model)
            return versions[-1] if versions else None
        return self._production(model)[0]

    def _production(self, model: str) -> tuple[int | None, str | None]:
        """``(version, text)`` of the production object (``(None, None)`` when absent)."""
        rel = f"{self._model(model)}/production"
        if not self.store.is_file(rel):
            return None, None
        text = self.store.read_text(rel)
        head = text.split("\n", 1)[0].strip()
        if not head.isdigit():
            raise RegistryError(f"{self.store.uri}/{rel}: corrupt pointer {head!r}")
        return int(head), text

    def resolve(self, model: str, ref: int | str) -> int:
        """Turn ``ref`` (a number, ``"latest"`` or ``"production"``) into a version number."""
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            number = int(ref)
            if number not in self.list_versions(model):
                raise RegistryError(f"model {model!r} has no version {number}")
            return number
        found = self.pointer(model, str(ref))
        if found is None:
            raise RegistryError(f"model {model!r} has no {ref} version")
        return found

    def metadata(self, model: str, ref: int | str) -> tuple[int, dict[str, Any]]:
        """(the number, the ``metadata.json``) of version ``ref`` of ``model``, without
        downloading its files."""
        number = self.resolve(model, ref)
        return number, json.loads(self._metadata_text(model, number))

    def _metadata_text(self, model: str, number: int) -> str:
        return self.store.read_text(f"{self._versions(model)}/{number}/{METADATA_FILE}")

    def get(self, model: str, ref: int | str) -> ModelVersion:
        """The version ``ref`` of ``model`` (see :meth:`resolve`)."""
        number = self.resolve(model, ref)
        rel = f"{self._versions(model)}/{number}"
        text = self._metadata_text(model, number)
        metadata = json.loads(text)
        artifacts = metadata.get(ARTIFACTS)
        path = self.store.local_dir(f"{self._model(model)}/{artifacts}" if artifacts else rel)
        if not (path / METADATA_FILE).is_file():  # object stores: files and metadata apart
            write_text_atomic(path / METADATA_FILE, text)
        return ModelVersion(
            model=model, version=number, path=path, metadata=metadata, uri=f"{self.store.uri}/{rel}"
        )

    def read_version_file(self, model: str, version: int, name: str) -> str | None:
        """The text of one file of a version (``statistics.json``, ``features.json``) without
        downloading the version; None when the version has no such file."""
        rel = f"{self._versions(model)}/{version}"
        if not self.store.is_file(f"{rel}/{METADATA_FILE}"):
            raise RegistryError(f"model {model!r} has no version {version}")
        artifacts = json.loads(self.store.read_text(f"{rel}/{METADATA_FILE}")).get(ARTIFACTS)
        where = f"{self._model(model)}/{artifacts}/{name}" if artifacts else f"{rel}/{name}"
        return self.store.read_text(where) if self.store.is_file(where) else None

    def latest(self, model: str) -> ModelVersion | None:
        """The newest version, or None when the model has no version."""
        number = self.pointer(model, "latest")
        return None if number is None else self.get(model, number)

    def production(self, model: str) -> ModelVersion | None:
        """The production version, or None when nothing was promoted yet."""
        number = self.pointer(model, "production")
        return None if number is None else self.get(model, number)

    def find_training(self, model: str, key: str) -> ModelVersion | None:
        """The newest version registered with ``training_key == key``, or None."""
        for number in reversed(self.list_versions(model)):
            rel = f"{self._versions(model)}/{number}/{METADATA_FILE}"
            if json.loads(self.store.read_text(rel)).get("training_key") == key:
                return self.get(model, number)
        return None

    def promotions(self, model: str) -> list[dict[str, Any]]:
        """The promotion log, oldest first (kept in the production object; a registry written
        by an older version may also have a separate ``promotions.jsonl``)."""
        legacy = f"{self._model(model)}/{LEGACY_PROMOTIONS}"
        lines = self.store.read_text(legacy).splitlines() if self.store.is_file(legacy) else []
        text = self._production(model)[1]
        lines += text.splitlines()[1:] if text else []
        return [json.loads(line) for line in lines if line.strip()]

    # -- write API -------------------------------------------------------------------------
    def register(
        self,
        model: str,
        source_dir: str | os.PathLike[str],
        metadata: dict[str, Any],
        *,
        parent: int | None | str = CURRENT,
        promote: bool = False,
        promote_reason: str = "",
        render: Mapping[str, Callable[[dict[str, Any]], str]] | None = None,
    ) -> ModelVersion:
        """Copy ``source_dir`` into a new version with ``metadata`` (it becomes ``latest``).

        ``source_dir`` must contain ``model.keras``. ``model``, ``version``, ``parent`` and
        ``created_at`` are filled in here and override the same keys in ``metadata``. ``parent``
        is the production version the new one was compared with (default ``CURRENT``: production
        as read now; None: no production version). With ``promote=True`` the new version also
        becomes ``production``. ``render`` maps file names to functions of the final metadata
        (version number included) whose text is written into the version before it appears
        (the model card).
        """
        source = Path(source_dir)
        if not (source / KERAS_FILE).is_file():
            raise RegistryError(f"{source}: no {KERAS_FILE}; not a model directory")
        if parent == CURRENT:
            parent = self.pointer(model, "production")
        if parent is not None and not isinstance(parent, int):
            raise RegistryError(f"parent {parent!r}: a version number or None")
        document = dict(metadata) | {"model": model, "parent": parent}
        versions = self._versions(model)
        staging_root = self.root / versions if isinstance(self.root, Path) else None
        if staging_root is not None:
            staging_root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".register.", suffix=".tmp", dir=staging_root))
        try:
            payload = tmp / "version"
            shutil.copytree(source, payload, symlinks=False)
            write = self._writer(model, payload)
            lock = (
                self.store.lock(self._model(model))
                if isinstance(self.store, LocalStore)
                else contextlib.nullcontext()
            )
            with lock:
                number = self._claim(model, document, render or {}, write)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if promote:
            self.promote(model, number, reason=promote_reason or "promoted at registration")
        return self.get(model, number)

    def _claim(
        self,
        model: str,
        document: dict[str, Any],
        render: Mapping[str, Callable[[dict[str, Any]], str]],
        write: Callable[[int, dict[str, Any], dict[str, str]], bool],
    ) -> int:
        """Try ``write(n, metadata, rendered files)`` for n = next free number, n + 1, ...
        until one write wins its number."""
        taken = 0  # highest number seen claimed by someone else
        for _attempt in range(100):
            existing = self.list_versions(model)
            number = max(existing[-1] if existing else 0, taken) + 1
            final = document | {"version": number, "created_at": utc_now()}
            if write(number, final, {name: f(final) for name, f in render.items()}):
                return number
            taken = number
        raise RegistryError(f"model {model!r}: no version number free after 100 tries")

    def _writer(
        self, model: str, payload: Path
    ) -> Callable[[int, dict[str, Any], dict[str, str]], bool]:
        """``write(n, metadata, rendered files) -> won``: on a filesystem, rename the payload to
        ``versions/<n>`` (the rename is the claim); on an object store, upload the payload under
        ``artifacts/<random id>/`` now, then create ``versions/<n>/metadata.json`` with
        ``If-None-Match: *`` (the create is the claim)."""
        store = self.store
        if isinstance(store, LocalStore):

            def rename(number: int, final: dict[str, Any], files: dict[str, str]) -> bool:
                for name, text in files.items():
                    (payload / name).write_text(text, encoding="utf-8")
                rel = f"{self._versions(model)}/{number}"
                return store.publish_dir(payload, rel, METADATA_FILE, dumps_json(final))

            return rename
        artifacts = f"{ARTIFACTS}/{uuid.uuid4().hex}"
        prefix = f"{self._model(model)}/{artifacts}"
        store.put_tree(payload, prefix)

        def create(number: int, final: dict[str, Any], files: dict[str, str]) -> bool:
            for name, text in files.items():  # version-specific (the card): before the commit
                store.write_text(f"{prefix}/{name}", text)
            rel = f"{self._versions(model)}/{number}/{METADATA_FILE}"
            return store.create_text(rel, dumps_json(final | {ARTIFACTS: artifacts}))

        return create

    def promote(
        self,
        model: str,
        ref: int | str,
        *,
        reason: str = "",
        expected: int | None | str = CURRENT,
    ) -> ModelVersion:
        """Point ``production`` at version ``ref`` by compare-and-swap, with its log record.

        ``expected`` is the production version the caller decided against (None: no production
        yet). If production is anything else when the pointer is written, nothing changes and
        :class:`PromotionConflict` is raised: a run that compared with version 3 must not
        overwrite a version 5 another run promoted meanwhile. The default, ``CURRENT``, reads the
        pointer first (a manual promotion), which still refuses a change between read and write.
        Promoting the version that already serves changes nothing and succeeds (a retry).
        """
        version = self.get(model, ref)
        rel = f"{self._model(model)}/production"
        current, text = self._production(model)
        if expected == CURRENT:
            expected = current
        if expected is not None and not isinstance(expected, int):
            raise RegistryError(f"expected production {expected!r}: a version number or None")
        if current == version.version:
            return version  # already serving: a retried promotion succeeds once
        if current == expected:
            entry = {"at": utc_now(), "from": expected, "to": version.version, "reason": reason}
            log = "".join(f"{line}\n" for line in (text or "").splitlines()[1:] if line.strip())
            new = f"{version.version}\n{log}{json.dumps(entry, sort_keys=True)}\n"
            if self.store.compare_and_swap(rel, text, new):
                return version
            current = self.pointer(model, "production")
            if current == version.version:
                return version  # a concurrent retry of this same promotion won
        raise PromotionConflict(
            f"model {model!r}: production moved: expected "
            f"{'no production version' if expected is None else f'version {expected}'}, "
            f"found {'none' if current is None else f'version {current}'}; "
            f"version {version.version} was not promoted"
        )
