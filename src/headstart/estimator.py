"""scikit-learn estimators.

* :class:`FeatureHeadClassifier`: a new head (logistic regression or a small MLP) on
  features, e.g. ones extracted by a frozen backbone. It follows the scikit-learn
  contract fully and is tested with ``parametrize_with_checks``.
* :class:`TransferClassifier`: the whole transfer (backbone + head) on raw inputs, image
  paths or texts: ``fit`` / ``predict`` / ``predict_proba`` / ``score``, usable in
  ``cross_val_score`` or a grid search. Its inputs are not numeric arrays, so of the
  scikit-learn checks it runs those about parameters and cloning.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from headstart._fit import FitOptions, fit
from headstart.data._readers import from_items
from headstart.surgery._model import make_head
from headstart.train._heads import fit_head_on_features
from headstart.train._schedule import feature_head_schedule


class FeatureHeadClassifier(ClassifierMixin, BaseEstimator):
    """A classification head trained on feature vectors.

    ``head="logreg"``: multinomial logistic regression on the features as they are, ``C``
    chosen by stratified 5-fold cross-validation over all of ``X`` (up to 2,000 rows; else
    on a held-out ``validation_fraction``), then refit on all of ``X``; ``head="mlp"``:
    ``hidden`` ReLU layers with ``dropout`` on standardised features, AdamW and early
    stopping on the validation part, then refit on all of ``X`` for the best epoch count.
    ``selection_`` says how the setting was chosen and its held-out accuracy.
    """

    def __init__(
        self,
        head: str = "logreg",
        hidden: Sequence[int] = (256,),
        dropout: float = 0.2,
        lr: float = 1e-3,
        max_epochs: int = 100,
        validation_fraction: float = 0.15,
        random_state: int = 0,
    ) -> None:
        self.head = head
        self.hidden = hidden
        self.dropout = dropout
        self.lr = lr
        self.max_epochs = max_epochs
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> FeatureHeadClassifier:
        X, y = validate_data(self, X, y, dtype=np.float32)
        check_classification_targets(y)
        self.classes_, yi = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"need at least 2 classes; got {len(self.classes_)} (one class cannot be fit)"
            )
        if self.head not in ("logreg", "mlp"):
            raise ValueError(f"head must be 'logreg' or 'mlp', not {self.head!r}")
        rng = np.random.default_rng(self.random_state)
        order = rng.permutation(len(X))
        n_val = int(len(X) * self.validation_fraction) if len(X) >= 20 else 0
        val, tr = order[:n_val], order[n_val:]
        torch.manual_seed(self.random_state)
        hidden = () if self.head == "logreg" else tuple(self.hidden)
        self.head_ = make_head(X.shape[1], len(self.classes_), hidden, self.dropout)
        stage = feature_head_schedule(self.lr, self.max_epochs, 10).stages[0]
        fit = fit_head_on_features(
            self.head_,
            stage,
            X[tr],
            yi[tr],
            X[val],
            yi[val],
            self.random_state,
            cv="auto",
            refit=True,
        )
        self.history_, self.selection_ = fit.history, fit.selection
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float32, reset=False)
        # float64: features enter unstandardised, and float32 kernels differ by batch size
        head = copy.deepcopy(self.head_).double().eval()
        with torch.inference_mode():
            logits = head(torch.from_numpy(np.ascontiguousarray(X, dtype=np.float64)))
        return torch.softmax(logits, 1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return self.classes_[self.predict_proba(X).argmax(1)]


class TransferClassifier(ClassifierMixin, BaseEstimator):
    """Transfer learning as a scikit-learn classifier on raw inputs.

    ``X`` is a sequence of image paths or of texts; the parameters mirror
    :class:`headstart.FitOptions`. A validation split is carved from ``X`` for early
    stopping and head selection.
    """

    def __init__(
        self,
        model: str | None = None,
        strategy: str = "extract",
        layer: str | None = None,
        head: str = "logreg",
        epochs: int = 10,
        unfreeze: int | str = 2,
        image_size: int | None = None,
        validation_fraction: float = 0.15,
        cache_dir: str | None = None,
        random_state: int = 0,
    ) -> None:
        self.model = model
        self.strategy = strategy
        self.layer = layer
        self.head = head
        self.epochs = epochs
        self.unfreeze = unfreeze
        self.image_size = image_size
        self.validation_fraction = validation_fraction
        self.cache_dir = cache_dir
        self.random_state = random_state

    def _options(self) -> FitOptions:
        return FitOptions(
            model=self.model,
            strategy=self.strategy,
            layer=self.layer,
            head=self.head,  # type: ignore[arg-type]
            epochs=self.epochs,
            unfreeze=self.unfreeze,
            image_size=self.image_size,
            cache_dir=self.cache_dir,
            seed=self.random_state,
        )

    def fit(self, X: Sequence[Any], y: Any) -> TransferClassifier:
        y = np.asarray(y)
        check_classification_targets(y)
        self.classes_, yi = np.unique(y, return_inverse=True)
        labels = [f"{i:06d}" for i in yi]  # sorts like classes_
        data = from_items(list(X), labels, val=self.validation_fraction, seed=self.random_state)
        result = fit(data, options=self._options())
        self.predictor_ = result.predictor
        self.metrics_ = result.metrics
        self.n_features_in_ = 1
        return self

    def predict_proba(self, X: Sequence[Any]) -> np.ndarray:
        check_is_fitted(self)
        proba = self.predictor_.predict_proba(list(X))
        # columns of the predictor are the classes seen in training, in classes_ order
        order = [int(c) for c in self.predictor_.classes]
        out = np.zeros((len(proba), len(self.classes_)))
        out[:, order] = proba
        return out

    def predict(self, X: Sequence[Any]) -> np.ndarray:
        check_is_fitted(self)
        return self.classes_[self.predict_proba(X).argmax(1)]


__all__ = ["FeatureHeadClassifier", "TransferClassifier"]
