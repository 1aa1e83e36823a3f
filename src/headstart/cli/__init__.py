"""The ``headstart`` command line: a thin shell over the Python API."""

from headstart.cli import _continual, _fewshot, _ship  # noqa: F401  (register more commands on app)
from headstart.cli._app import app, main

__all__ = ["app", "main"]
