"""The model registry: versioned model directories on a filesystem, with two pointers.

Layout under the registry root (a local path, a ``file://`` URI, or an object-store URI such as
``s3://bucket/registry``; S3-compatible stores use ``AWS_ENDPOINT_URL``)::

    models/<model>/
        versions/<n>/              one immutable version, n = 1, 2, 3, ...
            model.keras            the Keras model
            saved_model/           the exported TensorFlow SavedModel
            metadata.json          see below; written inside the version before it appears
            ...                    any other files the producer added (metrics, plots, stats)
        latest                     text file: the newest registered version number
        production                 text file: the version serving traffic (absent = none yet)
        promotions.jsonl           append-only log of production changes

``metadata.json`` holds at least::

    {"model", "version", "parent" (previous latest or null), "created_at", "params",
     "metrics", "dataset": {"content_hash", ...}, "code_version" (git sha),
     "pipeline_run_id", "gate": {"decision": "promote"|"candidate", ...}}

Atomicity: on a filesystem a version is built in a temporary directory next to ``versions/`` and
renamed to ``versions/<n>``; a crash leaves at most a hidden ``.tmp`` directory, never a half
version. Two writers racing for the same ``n`` cannot both win the rename; the loser retries with
``n + 1``. Pointers are replaced atomically (temp file + rename). On an object store (no rename),
``metadata.json`` is uploaded last and a version without it is invisible to readers; pointers are
single-object writes. Promotion is a compare-and-swap of the ``production`` pointer on both kinds
of store (a file lock on a filesystem, a conditional ``PutObject`` on S3; see
:mod:`mlp_common.storage`), so two overlapping runs can never regress production. Registering
versions on an object store still assumes one registering writer at a time (the pipeline).

``ModelVersion.path`` is always a local directory: versions in an object store are downloaded
once into a cache (``$MLP_CACHE_DIR``, default ``<tmp>/mlp-cache``); versions never change.

Stable read API (used by the serving component)::

    registry = ModelRegistry(root)
    registry.list_models() -> list[str]
    registry.list_versions(model) -> list[int]
    registry.get(model, ref) -> ModelVersion       ref: int, "3", "latest" or "production"
    registry.latest(model) / registry.production(model) -> ModelVersion | None
    ModelVersion.path / .keras_path / .saved_model_path / .metadata / .version

Write API (used by ``register``): ``register(model, source_dir, metadata, promote=False)`` and
``promote(model, version, reason, expected=<production version compared with>)``.

Promotion policy: :func:`promotion_problems` is the one check of whether a version may serve
production (its gate decided ``promote``, and its metrics meet any floors the caller sets). The
register step's ``--apply-gate``, ``mlp-registry promote`` and ``platformgen promote-model``
(which pins the version an environment serves in ``platform.yaml``) all call it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlp_common.files import dumps_json
from mlp_common.provenance import utc_now
from mlp_common.step import StepError
from mlp_common.storage import LocalStore, RemoteStore, is_remote, local_path

MODEL_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
METADATA_FILE = "metadata.json"
KERAS_FILE = "model.keras"
SAVED_MODEL_DIR = "saved_model"
POINTERS = ("latest", "production")


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
        rel = f"{self._model(model)}/{name}"
        if not self.store.is_file(rel):
            return None
        text = self.store.read_text(rel).strip()
        if not text.isdigit():
            raise RegistryError(f"{self.store.uri}/{rel}: corrupt pointer {text!r}")
        return int(text)

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

    def get(self, model: str, ref: int | str) -> ModelVersion:
        """The version ``ref`` of ``model`` (see :meth:`resolve`)."""
        number = self.resolve(model, ref)
        rel = f"{self._versions(model)}/{number}"
        path = self.store.local_dir(rel)
        metadata = json.loads((path / METADATA_FILE).read_text(encoding="utf-8"))
        return ModelVersion(
            model=model, version=number, path=path, metadata=metadata, uri=f"{self.store.uri}/{rel}"
        )

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
        """The promotion log, oldest first."""
        rel = f"{self._model(model)}/promotions.jsonl"
        if not self.store.is_file(rel):
            return []
        return [json.loads(line) for line in self.store.read_text(rel).splitlines() if line]

    # -- write API -------------------------------------------------------------------------
    def register(
        self,
        model: str,
        source_dir: str | os.PathLike[str],
        metadata: dict[str, Any],
        *,
        promote: bool = False,
        promote_reason: str = "",
        render: Mapping[str, Callable[[dict[str, Any]], str]] | None = None,
    ) -> ModelVersion:
        """Copy ``source_dir`` into a new version with ``metadata``; move ``latest`` to it.

        ``source_dir`` must contain ``model.keras``. ``model``, ``version``, ``parent`` and
        ``created_at`` are filled in here and override the same keys in ``metadata``.
        With ``promote=True`` the new version also becomes ``production``. ``render`` maps file
        names to functions of the final metadata (version number included) whose text is written
        into the version before it appears (the model card).
        """
        source = Path(source_dir)
        if not (source / KERAS_FILE).is_file():
            raise RegistryError(f"{source}: no {KERAS_FILE}; not a model directory")
        versions = self._versions(model)
        staging_root = self.root / versions if isinstance(self.root, Path) else None
        if staging_root is not None:
            staging_root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".register.", suffix=".tmp", dir=staging_root))
        try:
            payload = tmp / "version"
            shutil.copytree(source, payload, symlinks=False)
            with self.store.lock(self._model(model)):
                number = self._publish(model, payload, metadata, render or {})
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if promote:
            self.promote(model, number, reason=promote_reason or "promoted at registration")
        return self.get(model, number)

    def _publish(
        self,
        model: str,
        payload: Path,
        metadata: dict[str, Any],
        render: Mapping[str, Callable[[dict[str, Any]], str]],
    ) -> int:
        """Claim the next number for ``payload`` and move ``latest`` to the newest version.

        Runs under the writer lock (filesystem registries). The rename claim still guards
        against writers that do not take the lock."""
        versions = self._versions(model)
        taken = 0  # highest number seen claimed by someone else
        for _attempt in range(100):
            existing = self.list_versions(model)
            number = max(existing[-1] if existing else 0, taken) + 1
            document = dict(metadata)
            document.update(
                {
                    "model": model,
                    "version": number,
                    "parent": self.pointer(model, "latest"),
                    "created_at": utc_now(),
                }
            )
            for name, function in render.items():
                (payload / name).write_text(function(document), encoding="utf-8")
            if self.store.publish_dir(
                payload, f"{versions}/{number}", METADATA_FILE, dumps_json(document)
            ):
                break
            taken = number
        else:  # pragma: no cover - needs 100 concurrent writers
            raise RegistryError(f"model {model!r}: could not claim a version number")
        self._set_pointer(model, "latest", max(self.list_versions(model)))
        return number

    def promote(
        self,
        model: str,
        ref: int | str,
        *,
        reason: str = "",
        expected: int | None | str = CURRENT,
    ) -> ModelVersion:
        """Point ``production`` at version ``ref`` by compare-and-swap, and log the change.

        ``expected`` is the production version the caller decided against (None: no production
        yet). If production is anything else when the pointer is written, nothing changes and
        :class:`PromotionConflict` is raised: a run that compared with version 3 must not
        overwrite a version 5 another run promoted meanwhile. The default, ``CURRENT``, reads the
        pointer first (a manual promotion), which still refuses a change between read and write.
        """
        version = self.get(model, ref)
        rel = f"{self._model(model)}/production"
        if expected == CURRENT:
            expected = self.pointer(model, "production")
        if expected is not None and not isinstance(expected, int):
            raise RegistryError(f"expected production {expected!r}: a version number or None")
        before = None if expected is None else f"{expected}\n"
        if not self.store.compare_and_swap(rel, before, f"{version.version}\n"):
            found = self.pointer(model, "production")
            raise PromotionConflict(
                f"model {model!r}: production moved: expected "
                f"{'no production version' if expected is None else f'version {expected}'}, "
                f"found {'none' if found is None else f'version {found}'}; "
                f"version {version.version} was not promoted"
            )
        entry = {"at": utc_now(), "from": expected, "to": version.version, "reason": reason}
        rel = f"{self._model(model)}/promotions.jsonl"
        self.store.append_text_atomic(rel, json.dumps(entry, sort_keys=True) + "\n")
        return version

    def _set_pointer(self, model: str, name: str, version: int) -> None:
        self.store.write_text(f"{self._model(model)}/{name}", f"{version}\n")
