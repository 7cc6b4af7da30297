"""What the gate and the metrics need from the test rows, accumulated batch by batch.

Every number the evaluate step reports is a function of a few counts: each model's confusion
matrix (accuracy, F1, the per-class report), the candidate's agreement with every other model
(the McNemar counts) and, for the bootstrap test, the resampled totals of the metric's terms.
:class:`Tally` keeps exactly those, so evaluating 10 or 10 million test rows takes the same
memory: a batch of rows is scored, counted and dropped, and no per-row array outlives it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from mlp_common.step import DataError

CANDIDATE_MODEL = "candidate"
"""The model the gate decides on; every other model is compared with it."""


BOOTSTRAP_CHUNK_ROWS = 2048
"""Rows whose Poisson weights are drawn at once: ``resamples x 2048`` doubles (33 MB at 2,000)."""


def row_statistics(metric: str, y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Per row, the terms ``metric`` sums: ``[correct]`` for accuracy; per class
    ``[true positive, true, predicted]`` for f1_macro (float64, rows x terms)."""
    if metric == "accuracy":
        return (y == pred).astype("float64")[:, None]
    columns = []
    for label in range(n_classes):
        true_k, pred_k = y == label, pred == label
        columns += [true_k & pred_k, true_k, pred_k]
    return np.stack(columns, axis=1).astype("float64")


def metric_of_totals(metric: str, totals: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``metric`` from weighted sums of :func:`row_statistics` (resamples x terms) and the total
    weight of each resample."""
    if metric == "accuracy":
        return np.asarray(totals[:, 0] / weight)
    tp, true, predicted = totals[:, 0::3], totals[:, 1::3], totals[:, 2::3]
    denominator = true + predicted
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    return np.asarray(f1.mean(axis=1))


class PoissonBootstrap:
    """``metric(candidate) - metric(other)`` on ``resamples`` Poisson bootstrap resamples of rows
    fed in batches of any size (:meth:`add`): each row weighs ``Poisson(1)`` in each resample,
    drawn :data:`BOOTSTRAP_CHUNK_ROWS` rows at a time from one seeded generator, so memory is
    bounded by a chunk (never resamples x rows, never the rows themselves) and the same rows in
    the same order with the same seed give the same differences, however they were batched."""

    def __init__(self, metric: str, n_classes: int, resamples: int, seed: int) -> None:
        self.metric, self.n_classes, self.resamples = metric, n_classes, resamples
        self._rng = np.random.default_rng(seed)
        terms = 1 if metric == "accuracy" else 3 * n_classes
        self._mine = np.zeros((resamples, terms))
        self._theirs = np.zeros((resamples, terms))
        self._weight = np.zeros(resamples)
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._pending_rows = 0

    def add(self, y: np.ndarray, candidate: np.ndarray, other: np.ndarray) -> None:
        """Feed the next rows (labels and both models' predictions)."""
        self._pending.append((y, candidate, other))
        self._pending_rows += len(y)
        while self._pending_rows >= BOOTSTRAP_CHUNK_ROWS:
            self._draw(BOOTSTRAP_CHUNK_ROWS)

    def differences(self) -> np.ndarray:
        """The resampled differences of every row fed so far (``resamples`` floats)."""
        if self._pending_rows:
            self._draw(self._pending_rows)
        weight = np.maximum(self._weight, 1.0)  # an all-zero resample (tiny n) scores 0, not NaN
        return metric_of_totals(self.metric, self._mine, weight) - metric_of_totals(
            self.metric, self._theirs, weight
        )

    def _draw(self, rows: int) -> None:
        """Weigh the first ``rows`` pending rows in every resample."""
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        need = rows
        while need:
            y, candidate, other = self._pending[0]
            if len(y) <= need:
                parts.append(self._pending.pop(0))
                need -= len(y)
            else:
                parts.append((y[:need], candidate[:need], other[:need]))
                self._pending[0] = (y[need:], candidate[need:], other[need:])
                need = 0
        self._pending_rows -= rows
        y, candidate, other = (np.concatenate(column) for column in zip(*parts, strict=True))
        weights = self._rng.poisson(1.0, size=(self.resamples, rows)).astype("float64")
        self._mine += weights @ row_statistics(self.metric, y, candidate, self.n_classes)
        self._theirs += weights @ row_statistics(self.metric, y, other, self.n_classes)
        self._weight += weights.sum(axis=1)


def confusion(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts of (true, predicted) class indices: ``n_classes x n_classes`` int64, rows true."""
    y, pred = np.asarray(y, "int64"), np.asarray(pred, "int64")
    for name, values in (("label", y), ("prediction", pred)):
        if len(values) and (values.min() < 0 or values.max() >= n_classes):
            raise DataError(f"test split: a {name} outside the {n_classes} classes")
    counts = np.bincount(y * n_classes + pred, minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes)


def totals_of_confusion(metric: str, matrix: np.ndarray) -> np.ndarray:
    """The sums of :func:`row_statistics` over the rows a confusion matrix counts (float64)."""
    if metric == "accuracy":
        return np.array([float(np.trace(matrix))])
    terms = np.stack([np.diag(matrix), matrix.sum(axis=1), matrix.sum(axis=0)], axis=1)
    return terms.ravel().astype("float64")


def score_of(metric: str, matrix: np.ndarray) -> float:
    """The metric of the rows a confusion matrix counts."""
    totals = totals_of_confusion(metric, matrix)[None, :]
    return float(metric_of_totals(metric, totals, np.array([float(matrix.sum())]))[0])


class Tally:
    """Confusion matrices of the candidate and ``others``, the candidate's agreement with each
    other model (``[candidate only right, other only right, both right, both wrong]``) and, when
    ``bootstrap`` (metric, resamples, seed) is given, a :class:`PoissonBootstrap` per other model.
    Feed it with :meth:`add`; nothing in it grows with the rows."""

    def __init__(
        self,
        n_classes: int,
        others: Sequence[str],
        bootstrap: tuple[str, int, int] | None = None,
    ) -> None:
        self.n_classes = n_classes
        self.rows = 0
        self.confusion = {
            name: np.zeros((n_classes, n_classes), "int64") for name in (CANDIDATE_MODEL, *others)
        }
        self.agreement = {name: np.zeros(4, "int64") for name in others}
        self.bootstrap = {}
        if bootstrap is not None:
            metric, resamples, seed = bootstrap
            self.bootstrap = {
                name: PoissonBootstrap(metric, n_classes, resamples, seed) for name in others
            }

    def add(self, y: np.ndarray, predicted: Mapping[str, np.ndarray]) -> None:
        """Count the next rows: their labels and every model's predicted class indices."""
        self.rows += len(y)
        for name, matrix in self.confusion.items():
            matrix += confusion(y, predicted[name], self.n_classes)
        right = predicted[CANDIDATE_MODEL] == y
        for name, counts in self.agreement.items():
            other_right = predicted[name] == y
            counts += [
                np.sum(right & ~other_right),
                np.sum(~right & other_right),
                np.sum(right & other_right),
                np.sum(~right & ~other_right),
            ]
            if name in self.bootstrap:
                self.bootstrap[name].add(y, predicted[CANDIDATE_MODEL], predicted[name])

    def score(self, metric: str, name: str = CANDIDATE_MODEL) -> float:
        """``metric`` of model ``name`` on the rows counted so far."""
        return score_of(metric, self.confusion[name])
