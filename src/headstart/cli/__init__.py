"""The ``headstart`` command line: a thin shell over the Python API."""

from headstart.cli import _ship  # noqa: F401  (registers export and serve on app)
from headstart.cli._app import app, main

__all__ = ["app", "main"]
