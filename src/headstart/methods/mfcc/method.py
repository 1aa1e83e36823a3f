"""``mfcc``: MFCC statistics and logistic regression, ``C`` chosen on validation: the
audio baseline with no learned features at all (what a speech engineer tries first).

Each file is decoded, resampled to 16 kHz, silence-trimmed and cut or padded to 1 s (the
default audio backbone's clip). From 20 MFCCs ``c_t`` (25 ms windows, 10 ms hop) and their
deltas ``d_t = c_{t+1} - c_{t-1}`` the features are ``[mean_t c, std_t c, mean_t d,
std_t d, mean c over each third of the clip]``: 140 numbers, standardised.
"""

from __future__ import annotations

import numpy as np

from headstart.data._audio import clip, mfcc, read_audio
from headstart.data._dataset import SPLITS
from headstart.methods._base import FitContext, Method, MethodResult, head_logits
from headstart.methods.mfcc.config import MfccConfig
from headstart.train._heads import fit_logistic_head

DESCRIPTION = "logistic regression on MFCC statistics (20 MFCCs + deltas, 16 kHz, 1 s)"
RATE, SECONDS, N_MFCC = 16000, 1.0, 20


def mfcc_statistics(samples: np.ndarray, rate: int = RATE, n_mfcc: int = N_MFCC) -> np.ndarray:
    """The 7 x ``n_mfcc`` statistics of one clip (module docstring), shape ``(7 n_mfcc,)``."""
    c = mfcc(samples, rate, n_mfcc)
    d = np.gradient(c, axis=0) * 2 if len(c) > 1 else np.zeros_like(c)
    thirds = [part.mean(0) for part in np.array_split(c, 3) if len(part)]
    while len(thirds) < 3:
        thirds.append(thirds[-1])
    stats = [c.mean(0), c.std(0), d.mean(0), d.std(0), *thirds]
    return np.concatenate(stats).astype(np.float32)


def mfcc_features(items: list[str]) -> np.ndarray:
    """:func:`mfcc_statistics` of each audio file: ``(N, 140)``."""
    out = np.empty((len(items), 7 * N_MFCC), dtype=np.float32)
    for i, path in enumerate(items):
        out[i] = mfcc_statistics(clip(read_audio(path), RATE, SECONDS))
    return out


class Mfcc(Method):
    config: MfccConfig

    def fit(self, ctx: FitContext) -> MethodResult:
        data = ctx.data
        x = mfcc_features(list(data.items))
        xs = {s: x[data.indices(s)] for s in SPLITS}
        fit = fit_logistic_head(
            xs["train"],
            ctx.labels("train"),
            xs["val"],
            ctx.labels("val"),
            len(data.classes),
            ctx.options.seed,
            cv="auto",
            refit=True,
            standardize=True,
        )
        params = sum(p.numel() for p in fit.head.parameters())
        return MethodResult(
            None,
            fit.history,
            head_logits(fit.head, xs),
            None,
            {"mfcc": params},
            DESCRIPTION,
            fit.selection,
        )
