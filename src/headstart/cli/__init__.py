"""The ``headstart`` command line: a thin shell over the Python API."""

from headstart.cli import (  # noqa: F401  (register more commands on app)
    _continual,
    _fewshot,
    _multitask,
    _pretrain,
    _ship,
)
from headstart.cli._app import app, main

__all__ = ["app", "main"]
