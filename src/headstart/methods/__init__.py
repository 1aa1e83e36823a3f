"""Methods: every way of training a model for the task is a registered plug-in.

``headstart methods`` lists them. Each lives in its own folder here (``config.py``,
``method.py``, and ``__init__.py`` calling :func:`register_method`); this package imports
every folder it finds, in the order below, then any others alphabetically, so a new
method needs no edit outside its folder. See "How to add a method" in the README.
"""

import importlib
import pkgutil

from headstart.methods._base import FitContext, Method, MethodResult, head_logits, train_schedule
from headstart.methods._registry import (
    KINDS,
    MethodInfo,
    get_method,
    kind_of,
    list_methods,
    register_method,
)

_FIRST = ("extract", "finetune", "scratch", "tfidf", "pixels", "small_cnn")


def _discover() -> None:
    found = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    for name in [*(n for n in _FIRST if n in found), *(n for n in found if n not in _FIRST)]:
        importlib.import_module(f"{__name__}.{name}")


_discover()

__all__ = [
    "KINDS",
    "FitContext",
    "Method",
    "MethodInfo",
    "MethodResult",
    "get_method",
    "head_logits",
    "kind_of",
    "list_methods",
    "register_method",
    "train_schedule",
]
