"""Options of ``zeroshot``: how a class name becomes the text that is embedded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from headstart._fields import option, positive
from headstart.fewshot._labels import DEFAULT_TEMPLATE, check_template
from headstart.fewshot._zeroshot import DEFAULT_TEMPERATURE


def template() -> Any:
    return option(
        "Zero-shot: the text embedded for a class, {} standing for its name.",
        default=DEFAULT_TEMPLATE,
        check=lambda v: v.count("{}") == 1 and bool(check_template(v)),
        must="a text with exactly one {}",
    )


def temperature() -> Any:
    return option(
        "Zero-shot: softmax temperature of the cosine similarities.",
        default=DEFAULT_TEMPERATURE,
        check=positive,
    )


@dataclass(frozen=True)
class ZeroshotConfig:
    template: str = template()
    temperature: float = temperature()
