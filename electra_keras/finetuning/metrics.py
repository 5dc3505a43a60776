"""GLUE metrics in numpy: accuracy, F1, Matthews correlation, Pearson, Spearman.

Degenerate inputs (constant predictions, a single class, no positives) give
0.0, never NaN, and emit a `DegenerateMetricWarning` saying why;
`compute_metrics` collects those notes.

Per task, the GLUE metric set (Wang et al., 2019): CoLA Matthews correlation;
MRPC and QQP accuracy and F1 of the positive class (label 1); STS-B Pearson and
Spearman correlation; every other task accuracy.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np


class DegenerateMetricWarning(UserWarning):
    """A metric is undefined for these inputs and was reported as 0.0."""


TASK_METRICS: dict[str, tuple[str, ...]] = {
    "cola": ("mcc",),
    "sst2": ("accuracy",),
    "mrpc": ("accuracy", "f1"),
    "stsb": ("pearson", "spearman"),
    "qqp": ("accuracy", "f1"),
    "mnli": ("accuracy",),
    "qnli": ("accuracy",),
    "rte": ("accuracy",),
    "wnli": ("accuracy",),
    "mr": ("accuracy",),
    "trec": ("accuracy",),
}


def _pair(labels: Any, predictions: Any) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels).reshape(-1)
    predictions = np.asarray(predictions).reshape(-1)
    if labels.shape != predictions.shape:
        raise ValueError(
            f"Got {labels.size} labels but {predictions.size} predictions."
        )
    if labels.size == 0:
        raise ValueError("Cannot compute a metric on zero examples.")
    return labels, predictions


def _degenerate(metric: str, why: str) -> float:
    warnings.warn(
        f"{metric} is undefined ({why}); reported as 0.0.",
        DegenerateMetricWarning,
        stacklevel=3,
    )
    return 0.0


def accuracy(labels: Any, predictions: Any) -> float:
    """Fraction of predictions equal to the labels.

    Args:
        labels: true class ids.
        predictions: predicted class ids.
    """
    labels, predictions = _pair(labels, predictions)
    return float(np.mean(labels == predictions))


def f1_score(labels: Any, predictions: Any, positive_label: int = 1) -> float:
    """F1 of the positive class (GLUE's MRPC/QQP F1).

    Args:
        labels: true class ids.
        predictions: predicted class ids.
        positive_label: the class whose precision and recall are combined.
    """
    labels, predictions = _pair(labels, predictions)
    true_pos = np.sum((predictions == positive_label) & (labels == positive_label))
    predicted_pos = np.sum(predictions == positive_label)
    actual_pos = np.sum(labels == positive_label)
    if predicted_pos == 0 or actual_pos == 0:
        which = "no positive predictions" if predicted_pos == 0 else "no positives"
        return _degenerate("F1", which)
    # 2PR / (P + R) = 2TP / (predicted positives + actual positives).
    return float(2 * true_pos / (predicted_pos + actual_pos))


def matthews_corrcoef(labels: Any, predictions: Any) -> float:
    """Matthews correlation coefficient (multi-class form of Gorodkin, 2004).

    For two classes this is `(TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN))`.

    Args:
        labels: true class ids.
        predictions: predicted class ids.
    """
    labels, predictions = _pair(labels, predictions)
    classes = np.union1d(labels, predictions)
    true_counts = np.array([np.sum(labels == c) for c in classes], dtype=np.float64)
    pred_counts = np.array(
        [np.sum(predictions == c) for c in classes], dtype=np.float64
    )
    n = float(labels.size)
    correct = float(np.sum(labels == predictions))
    covariance = correct * n - float(np.dot(true_counts, pred_counts))
    var_pred = n * n - float(np.dot(pred_counts, pred_counts))
    var_true = n * n - float(np.dot(true_counts, true_counts))
    if var_pred == 0 or var_true == 0:
        which = "constant predictions" if var_pred == 0 else "constant labels"
        return _degenerate("Matthews correlation", which)
    return float(covariance / np.sqrt(var_pred * var_true))


def pearson_corrcoef(labels: Any, predictions: Any) -> float:
    """Pearson correlation of scores.

    Args:
        labels: true scores.
        predictions: predicted scores.
    """
    labels, predictions = _pair(labels, predictions)
    x = labels.astype(np.float64) - np.mean(labels)
    y = predictions.astype(np.float64) - np.mean(predictions)
    denominator = np.sqrt(np.sum(x * x) * np.sum(y * y))
    if denominator == 0:
        which = "constant predictions" if np.all(y == 0) else "constant labels"
        return _degenerate("Pearson correlation", which)
    return float(np.sum(x * y) / denominator)


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(values.size, dtype=np.float64)
    start = 0
    while start < values.size:
        end = start
        while end + 1 < values.size and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    return ranks


def spearman_corrcoef(labels: Any, predictions: Any) -> float:
    """Spearman rank correlation (Pearson on ranks; ties get average ranks).

    Args:
        labels: true scores.
        predictions: predicted scores.
    """
    labels, predictions = _pair(labels, predictions)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = pearson_corrcoef(_ranks(labels), _ranks(predictions))
    if caught:
        which = str(caught[0].message).split("(")[1].split(")")[0]
        return _degenerate("Spearman correlation", which)
    return value


METRIC_FUNCTIONS = {
    "accuracy": accuracy,
    "f1": f1_score,
    "mcc": matthews_corrcoef,
    "pearson": pearson_corrcoef,
    "spearman": spearman_corrcoef,
}


def metric_names_for_task(task_name: str, regression: bool = False) -> tuple[str, ...]:
    """The GLUE metric set of a task; accuracy (or correlations) otherwise.

    Args:
        task_name: a task name ("cola", "mrpc", "csv", ...).
        regression: whether the task predicts scores (unknown tasks only).
    """
    if task_name in TASK_METRICS:
        return TASK_METRICS[task_name]
    return ("pearson", "spearman") if regression else ("accuracy",)


def compute_metrics(
    metric_names: Sequence[str],
    labels: Any,
    predictions: Any,
    notes: list[str] | None = None,
) -> dict[str, float]:
    """Computes several metrics; degenerate cases are noted, not raised.

    Args:
        metric_names: names from `METRIC_FUNCTIONS`.
        labels: true class ids (or scores).
        predictions: predicted class ids (or scores).
        notes: if given, each degenerate-case message is appended to it.

    Returns:
        `{name: value}` in the order of `metric_names`.
    """
    unknown = [n for n in metric_names if n not in METRIC_FUNCTIONS]
    if unknown:
        raise ValueError(
            f"Unknown metric(s) {unknown}; known: {', '.join(METRIC_FUNCTIONS)}."
        )
    results = {}
    for name in metric_names:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DegenerateMetricWarning)
            results[name] = METRIC_FUNCTIONS[name](labels, predictions)
        for warning in caught:
            if notes is not None:
                notes.append(str(warning.message))
            else:
                warnings.warn(warning.message, stacklevel=2)
    return results
