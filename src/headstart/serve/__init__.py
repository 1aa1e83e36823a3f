"""Serving a bundle over HTTP: ``headstart serve DIR`` (Starlette app, uvicorn server)."""

from headstart.serve._app import InputError, Limits, create_app, serve

__all__ = ["InputError", "Limits", "create_app", "serve"]
