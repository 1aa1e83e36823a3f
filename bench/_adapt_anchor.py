"""The ADAPT library's CORAL, KMM and KLIEP on features saved by bench/adapt.py.

Runs in its own environment (ADAPT pulls in TensorFlow, kept out of the project's venv):

    /tmp/adapt-venv/bin/python bench/_adapt_anchor.py FEATURES.npz OUT.json

The ``.npz`` holds ``xs, ys`` (source training features and labels), ``xt`` (target
features) and ``yt`` (target labels, for scoring only). Every estimator is a
``LogisticRegression(C=0.1)`` on features standardised with the source's statistics (the
target with the source's too: ADAPT's methods do the aligning); KMM and KLIEP get the
Gaussian kernel width of the median heuristic (their default ``gamma=1`` is degenerate on
1,280 standardised dimensions).
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from sklearn.linear_model import LogisticRegression


def _median_gamma(x: np.ndarray, n: int = 500) -> float:
    sub = x[np.random.default_rng(0).permutation(len(x))[:n]]
    d = ((sub[:, None, :] - sub[None, :, :]) ** 2).sum(-1)[np.triu_indices(len(sub), 1)]
    return 1.0 / float(np.median(d))


def main(path: str, out: str) -> None:
    from adapt.feature_based import CORAL
    from adapt.instance_based import KLIEP, KMM

    z = np.load(path)
    x_s, x_t = z["xs"].astype(np.float64), z["xt"].astype(np.float64)  # cvxopt wants doubles
    mean, scale = x_s.mean(0), x_s.std(0) + 1e-6
    xs, xt = (x_s - mean) / scale, (x_t - mean) / scale
    ys, yt = z["ys"], z["yt"]
    gamma = _median_gamma(np.concatenate([xs, xt]))
    rows = {}
    makers = {
        "coral": lambda: CORAL(
            LogisticRegression(C=0.1, max_iter=1000), Xt=xt, random_state=0, verbose=0
        ),
        "kmm": lambda: KMM(
            LogisticRegression(C=0.1, max_iter=1000),
            Xt=xt,
            kernel="rbf",
            gamma=gamma,
            random_state=0,
            verbose=0,
        ),
        "kliep": lambda: KLIEP(
            LogisticRegression(C=0.1, max_iter=1000),
            Xt=xt,
            kernel="rbf",
            gamma=gamma,
            random_state=0,
            verbose=0,
        ),
    }
    for name, make in makers.items():
        t = time.perf_counter()
        try:
            model = make()
            model.fit(xs, ys)
            acc = float((model.predict(xt) == yt).mean())
            rows[name] = {"target_accuracy": acc, "seconds": time.perf_counter() - t}
        except Exception as exc:  # an anchor failing is a result too
            rows[name] = {
                "error": f"{type(exc).__name__}: {exc}",
                "seconds": time.perf_counter() - t,
            }
    from importlib.metadata import version

    rows["_version"] = version("adapt")
    with open(out, "w") as f:
        json.dump(rows, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
