"""``tfidf``: TF-IDF of word 1-2-grams and character 2-5-grams (within word boundaries),
sublinear term frequency, then logistic regression with ``C`` chosen on the validation
split: what a careful practitioner tries first on a small text task."""

from __future__ import annotations

import numpy as np

from headstart.data._dataset import SPLITS
from headstart.methods._base import FitContext, Method, MethodResult
from headstart.train._heads import logistic_c_sweep

CS = (0.3, 1.0, 3.0, 10.0, 30.0)
DESCRIPTION = "TF-IDF word 1-2 + char 2-5 n-grams, logistic regression"


class Tfidf(Method):
    def fit(self, ctx: FitContext) -> MethodResult:
        from scipy import sparse
        from sklearn.feature_extraction.text import TfidfVectorizer

        data = ctx.data
        texts = np.asarray(data.items, dtype=object)
        train = list(texts[data.indices("train")])
        word = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
        char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)
        word.fit(train)
        try:
            char.fit(train)
        except ValueError:  # too few texts for min_df=2
            char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)
            char.fit(train)
        x = sparse.hstack([word.transform(texts), char.transform(texts)]).tocsr()
        xs = {s: x[data.indices(s)] for s in SPLITS}
        clf, history, selection = logistic_c_sweep(
            xs["train"],
            ctx.labels("train"),
            xs["val"],
            ctx.labels("val"),
            CS,
            ctx.options.seed,
            max_iter=3000,
            cv="auto",
            refit=True,
        )
        k = len(data.classes)
        logits = {}
        for s in SPLITS:
            out = np.full((xs[s].shape[0], k), -1e4, dtype=np.float32)
            if xs[s].shape[0]:
                scores = clf.decision_function(xs[s])
                if scores.ndim == 1:  # binary: the positive class's margin
                    out[:, clf.classes_[0]] = 0.0
                    out[:, clf.classes_[1]] = scores
                else:
                    out[:, clf.classes_] = scores
            logits[s] = out
        params = int(clf.coef_.size + clf.intercept_.size)
        return MethodResult(None, history, logits, None, {"tfidf": params}, DESCRIPTION, selection)
