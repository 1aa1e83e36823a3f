"""Options of ``prototype``: the feature transform and the similarity."""

from __future__ import annotations

from dataclasses import dataclass

from headstart._fields import option
from headstart.fewshot._prototype import METRICS, TRANSFORMS


def transform() -> str:
    return option(
        "Prototype heads: features as raw, l2 (unit length) or cl2n (centred, then unit length).",
        default="cl2n",
        check=lambda v: v in TRANSFORMS,
        must="raw, l2 or cl2n",
    )


def metric() -> str:
    return option(
        "Prototype heads: euclidean (nearest centroid) or cosine (cosine classifier).",
        default="euclidean",
        check=lambda v: v in METRICS,
        must="euclidean or cosine",
    )


@dataclass(frozen=True)
class PrototypeConfig:
    transform: str = transform()
    metric: str = metric()
