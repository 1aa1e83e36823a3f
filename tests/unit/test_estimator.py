"""scikit-learn contract: full checks for the feature head, API checks and real use for
the raw-input transfer classifier."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from sklearn.base import clone
from sklearn.model_selection import cross_val_score
from sklearn.utils.estimator_checks import (
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
    parametrize_with_checks,
)

from headstart.estimator import FeatureHeadClassifier, TransferClassifier


@parametrize_with_checks([FeatureHeadClassifier(), FeatureHeadClassifier(head="mlp", max_epochs=5)])
def test_feature_head_follows_sklearn_contract(estimator, check):
    check(estimator)


@pytest.mark.parametrize(
    "check",
    [
        check_parameters_default_constructible,
        check_no_attributes_set_in_init,
        check_get_params_invariance,
        check_set_params,
    ],
)
def test_transfer_classifier_parameter_contract(check):
    check("TransferClassifier", TransferClassifier())


def _texts(n: int = 16) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(0)
    pos = ["great", "wonderful", "superb", "delightful", "moving"]
    neg = ["awful", "boring", "dreadful", "tedious", "clumsy"]
    texts, y = [], []
    for i in range(n):
        words = pos if i % 2 else neg
        texts.append(" ".join(rng.choice(words, 4)) + " film")
        y.append(i % 2)
    return texts, np.array(y)


def test_transfer_classifier_on_texts_fits_predicts_scores(tmp_path):
    X, y = _texts(40)
    clf = TransferClassifier(model="test_words.tiny", cache_dir=str(tmp_path))
    assert clf.fit(X, y) is clf
    assert list(clf.classes_) == [0, 1]
    proba = clf.predict_proba(X)
    assert proba.shape == (40, 2)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    assert set(clf.predict(X)) <= {0, 1}
    assert clf.score(X, y) >= 0.9  # separable vocabularies


def test_transfer_classifier_keeps_label_types_and_clones(tmp_path):
    X, y = _texts(40)
    labels = np.where(y == 1, "pos", "neg")
    clf = TransferClassifier(model="test_words.tiny", cache_dir=str(tmp_path)).fit(X, labels)
    assert set(clf.predict(X)) <= {"pos", "neg"}
    fresh = clone(clf)
    assert not hasattr(fresh, "classes_")
    scores = cross_val_score(fresh, X, labels, cv=2)
    assert scores.shape == (2,) and scores.min() >= 0.8


def test_transfer_classifier_on_image_paths(tmp_path):
    rng = np.random.default_rng(0)
    paths, y = [], []
    for i in range(24):
        colour = (220, 30, 30) if i % 2 else (30, 30, 220)
        arr = np.clip(np.array(colour) + rng.normal(0, 20, (24, 24, 3)), 0, 255).astype("uint8")
        p = tmp_path / f"im{i}.png"
        Image.fromarray(arr).save(p)
        paths.append(str(p))
        y.append("red" if i % 2 else "blue")
    clf = TransferClassifier(model="test_cnn.tiny", cache_dir=str(tmp_path / "cache")).fit(paths, y)
    assert clf.score(paths, y) >= 0.9
