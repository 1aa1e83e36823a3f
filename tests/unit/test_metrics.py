"""Classification metrics on hand-worked cases, checked against scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from headstart.evaluate import accuracy, classification_report, confusion, macro_f1, per_class

# true 0 0 0 1 1 2 / predicted 0 0 1 1 2 2
Y_TRUE = np.array([0, 0, 0, 1, 1, 2])
Y_PRED = np.array([0, 0, 1, 1, 2, 2])


def test_confusion_by_hand() -> None:
    c = confusion(Y_TRUE, Y_PRED, 3)
    assert c.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    np.testing.assert_array_equal(c, skm.confusion_matrix(Y_TRUE, Y_PRED, labels=[0, 1, 2]))
    assert confusion(np.array([1]), np.array([1]), 4).shape == (4, 4)


def test_accuracy_by_hand() -> None:
    assert accuracy(Y_TRUE, Y_PRED) == pytest.approx(4 / 6)
    assert accuracy(Y_TRUE, Y_TRUE) == 1.0
    assert accuracy([0, 1], [1, 0]) == 0.0
    assert math.isnan(accuracy(np.array([]), np.array([])))


def test_per_class_by_hand() -> None:
    precision, recall, f1, support = per_class(confusion(Y_TRUE, Y_PRED, 3))
    np.testing.assert_allclose(precision, [1.0, 0.5, 0.5])
    np.testing.assert_allclose(recall, [2 / 3, 0.5, 1.0])
    np.testing.assert_allclose(f1, [0.8, 0.5, 2 / 3])
    np.testing.assert_array_equal(support, [3, 2, 1])
    sk = skm.precision_recall_fscore_support(Y_TRUE, Y_PRED, labels=[0, 1, 2], zero_division=0)
    for ours, theirs in zip((precision, recall, f1, support), sk, strict=True):
        np.testing.assert_allclose(ours, theirs)


def test_macro_f1_by_hand() -> None:
    expected = (0.8 + 0.5 + 2 / 3) / 3
    assert macro_f1(Y_TRUE, Y_PRED, 3) == pytest.approx(expected)
    assert macro_f1(Y_TRUE, Y_PRED, 3) == pytest.approx(
        skm.f1_score(Y_TRUE, Y_PRED, average="macro")
    )


def test_class_never_predicted_scores_zero_not_nan() -> None:
    y_true, y_pred = np.array([0, 0, 1, 1, 2]), np.array([0, 0, 0, 1, 1])
    precision, recall, f1, _ = per_class(confusion(y_true, y_pred, 3))
    assert precision[2] == 0.0 and recall[2] == 0.0 and f1[2] == 0.0
    assert not np.isnan(precision).any()
    assert macro_f1(y_true, y_pred, 3) == pytest.approx(
        skm.f1_score(y_true, y_pred, average="macro", zero_division=0)
    )


def test_macro_f1_averages_over_classes_present_in_the_truth() -> None:
    # class 2 is predicted once but never true: it is not part of the average
    y_true, y_pred = np.array([0, 0, 1, 1]), np.array([0, 2, 1, 1])
    assert macro_f1(y_true, y_pred, 3) == pytest.approx((2 / 3 + 1.0) / 2)
    assert macro_f1(y_true, y_pred, 3) == pytest.approx(
        skm.f1_score(y_true, y_pred, labels=[0, 1], average="macro")
    )
    assert math.isnan(macro_f1(np.array([], dtype=int), np.array([], dtype=int), 2))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_cases_agree_with_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 5, 200)
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.integers(0, 5, 200))
    assert accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert macro_f1(y_true, y_pred, 5) == pytest.approx(
        skm.f1_score(y_true, y_pred, average="macro")
    )


def test_classification_report() -> None:
    report = classification_report(Y_TRUE, Y_PRED, ["cat", "dog", "eel"])
    assert report["n"] == 6
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert report["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert list(report["per_class"]) == ["cat", "dog", "eel"]
    assert report["per_class"]["cat"] == {
        "precision": 1.0,
        "recall": pytest.approx(2 / 3),
        "f1": pytest.approx(0.8),
        "support": 3,
    }
    assert report["per_class"]["eel"]["support"] == 1
