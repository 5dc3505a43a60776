import math
import warnings

import numpy as np
import pytest

from electra_keras.finetuning import metrics


def test_accuracy_and_f1_hand_checked():
    labels = [1, 1, 1, 0, 0, 0]
    preds = [1, 1, 0, 0, 0, 1]
    assert metrics.accuracy(labels, preds) == pytest.approx(4 / 6)
    # TP 2, FP 1, FN 1: precision 2/3, recall 2/3, F1 2/3.
    assert metrics.f1_score(labels, preds) == pytest.approx(2 / 3)
    # Positive label 0: TP 2 (rows 4, 5), FP 1, FN 1.
    assert metrics.f1_score(labels, preds, positive_label=0) == pytest.approx(2 / 3)
    # Precision 1, recall 1/3: F1 = 2 * 1 * (1/3) / (4/3) = 0.5.
    assert metrics.f1_score([1, 1, 1, 0], [1, 0, 0, 0]) == pytest.approx(0.5)


def test_matthews_hand_checked():
    labels = [1, 1, 1, 0, 0, 0]
    preds = [1, 1, 0, 0, 0, 1]
    # (TP*TN - FP*FN) / sqrt(3*3*3*3) = (4 - 1) / 9.
    assert metrics.matthews_corrcoef(labels, preds) == pytest.approx(1 / 3)
    assert metrics.matthews_corrcoef([0, 1, 0, 1], [1, 0, 1, 0]) == pytest.approx(-1)
    # Binary, unbalanced: TP 1, TN 3, FP 1, FN 0.
    value = metrics.matthews_corrcoef([1, 0, 0, 0, 0], [1, 1, 0, 0, 0])
    assert value == pytest.approx((1 * 3 - 1 * 0) / math.sqrt(2 * 1 * 4 * 3))
    # Three classes, all right: 1.
    assert metrics.matthews_corrcoef([0, 1, 2], [0, 1, 2]) == pytest.approx(1.0)


def test_pearson_and_spearman_hand_checked():
    # x dev (-1, 0, 1), y dev (-7/3, -1/3, 8/3): r = 5 / sqrt(2 * 114 / 9).
    assert metrics.pearson_corrcoef([1, 2, 3], [2, 4, 7]) == pytest.approx(
        5 / math.sqrt(2 * 114 / 9)
    )
    # Ranks (1, 2.5, 2.5, 4) vs (1, 2, 3, 4): 4.5 / sqrt(4.5 * 5).
    assert metrics.spearman_corrcoef([1, 2, 2, 3], [10, 20, 30, 40]) == pytest.approx(
        4.5 / math.sqrt(22.5)
    )
    # Monotone but not linear: Spearman 1, Pearson below 1.
    assert metrics.spearman_corrcoef([1, 2, 3, 4], [1, 8, 27, 64]) == pytest.approx(1)
    assert metrics.pearson_corrcoef([1, 2, 3, 4], [1, 8, 27, 64]) < 0.99


@pytest.mark.parametrize(
    "fn, labels, preds",
    [
        (metrics.matthews_corrcoef, [0, 1, 0, 1], [1, 1, 1, 1]),
        (metrics.matthews_corrcoef, [1, 1, 1], [0, 1, 0]),
        (metrics.f1_score, [0, 1, 0], [0, 0, 0]),
        (metrics.f1_score, [0, 0, 0], [0, 1, 0]),
        (metrics.pearson_corrcoef, [1.0, 2.0, 3.0], [0.5, 0.5, 0.5]),
        (metrics.spearman_corrcoef, [1.0, 2.0, 3.0], [0.5, 0.5, 0.5]),
        (metrics.pearson_corrcoef, [2.0, 2.0], [0.1, 0.5]),
    ],
)
def test_degenerate_cases_give_zero_with_a_warning(fn, labels, preds):
    with pytest.warns(metrics.DegenerateMetricWarning, match="reported as 0.0"):
        value = fn(labels, preds)
    assert value == 0.0


def test_compute_metrics_collects_notes():
    notes = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = metrics.compute_metrics(
            ["accuracy", "f1", "mcc"], [0, 1, 1], [0, 0, 0], notes=notes
        )
    assert result == {"accuracy": pytest.approx(1 / 3), "f1": 0.0, "mcc": 0.0}
    assert len(notes) == 2 and "constant predictions" in notes[1]
    assert not any(np.isnan(v) for v in result.values())


def test_task_metric_sets_and_bad_input():
    assert metrics.metric_names_for_task("cola") == ("mcc",)
    assert metrics.metric_names_for_task("mrpc") == ("accuracy", "f1")
    assert metrics.metric_names_for_task("qqp") == ("accuracy", "f1")
    assert metrics.metric_names_for_task("stsb") == ("pearson", "spearman")
    assert metrics.metric_names_for_task("mnli") == ("accuracy",)
    assert metrics.metric_names_for_task("csv") == ("accuracy",)
    assert metrics.metric_names_for_task("csv", regression=True) == (
        "pearson",
        "spearman",
    )
    with pytest.raises(ValueError, match="2 labels but 1"):
        metrics.accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="zero examples"):
        metrics.accuracy([], [])
    with pytest.raises(ValueError, match="Unknown metric"):
        metrics.compute_metrics(["auc"], [0], [0])
