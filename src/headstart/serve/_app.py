"""The HTTP app that serves a bundle's predictions (Starlette; run by uvicorn).

* ``GET /health``: ``{"status": "ok"}``;
* ``GET /metadata``: model, modality, classes, headstart version, runtime, limits;
* ``POST /predict``: a JSON body ``{"texts": [...]}`` (text models) or ``{"paths": [...]}``
  (image or audio files on the server's disk, when allowed), or a ``multipart/form-data``
  upload of image or audio files; the answer is the list of records ``headstart predict
  --json`` prints: ``[{"input": ..., "label": ..., "probability": ...}, ...]`` (an
  upload's input is its file name).

Bad input gets a 4xx with ``{"error": reason}``, never a 500: 400 (malformed body), 413
(body, item count, text or image over the limits), 415 (another content type), 422 (an
unreadable image, an input the model does not take). Concurrent requests are batched
together (:class:`~headstart.serve._batcher.Batcher`).
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from headstart import __version__
from headstart.data._items import load_image
from headstart.data._modality import get_modality
from headstart.serve._batcher import Batcher


@dataclass(frozen=True)
class Limits:
    """What one request may carry."""

    max_body_bytes: int = 16 * 1024 * 1024
    max_items: int = 64
    max_text_chars: int = 20_000
    max_image_pixels: int = 40_000_000


class InputError(Exception):
    """A request the server refuses: an HTTP status and the reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _error(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status)


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused (413) as soon as it passes ``limit`` bytes, whatever the
    ``Content-Length`` header claims."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise InputError(413, f"body of {declared} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise InputError(413, f"body over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def decode_audio(source: str | bytes, name: str, max_pixels: int = 0) -> Any:
    """Decoded mono audio from a path or uploaded bytes; :class:`InputError` when it is not
    audio (``max_pixels`` is unused: the body limit bounds an upload)."""
    from headstart.data._audio import read_audio

    if isinstance(source, str) and Path(source).is_dir():
        raise InputError(422, f"{name}: a folder, not an audio file")
    if isinstance(source, str) and not Path(source).exists():
        raise InputError(422, f"{name}: no such file")
    try:
        return read_audio(source)
    except (OSError, ValueError, RuntimeError) as exc:
        raise InputError(422, f"{name}: unreadable audio ({exc})") from None


def decode_image(source: str | bytes, name: str, max_pixels: int) -> Image.Image:
    """An RGB image from a path or uploaded bytes; :class:`InputError` when it is not one."""
    try:
        stream: Any = io.BytesIO(source) if isinstance(source, bytes) else source
        with Image.open(stream) as img:
            pixels = img.width * img.height
        if pixels > max_pixels:
            raise InputError(413, f"{name}: {pixels} pixels; the limit is {max_pixels}")
        if isinstance(stream, io.BytesIO):
            stream.seek(0)
        return load_image(stream)
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(422, f"{name}: no such file") from None
    except IsADirectoryError:
        raise InputError(422, f"{name}: a folder, not an image file") from None
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise InputError(422, f"{name}: not a readable image ({exc})") from None
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt files
        raise InputError(422, f"{name}: unreadable image ({exc})") from None


DECODERS: dict[str, Any] = {"image": decode_image, "audio": decode_audio}
"""How a file modality's uploads and paths are decoded, by modality name (a new file
modality registers its decoder here); text needs none."""


class PredictApp:
    """The request handlers around one loaded predictor."""

    def __init__(
        self, predictor: Any, runtime: str, limits: Limits, allow_paths: bool, batch: int
    ) -> None:
        self.predictor = predictor
        self.runtime = runtime
        self.limits = limits
        self.allow_paths = allow_paths
        self.batcher = Batcher(predictor.predict_proba, max_items=max(batch, limits.max_items))

    @property
    def modality(self) -> str:
        return str(self.predictor.modality)

    @property
    def takes_files(self) -> bool:
        return get_modality(self.modality).files

    async def health(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def metadata(self, request: Request) -> JSONResponse:
        config = self.predictor.config
        accepts = ["multipart files"] if self.takes_files else ["texts"]
        if self.takes_files and self.allow_paths:
            accepts.insert(0, "paths")
        return JSONResponse(
            {
                "model": config["backbone"]["name"],
                "modality": self.modality,
                "classes": list(self.predictor.classes),
                "version": __version__,
                "strategy": config.get("strategy"),
                "layer": config.get("layer"),
                "runtime": self.runtime,
                "accepts": accepts,
                "limits": asdict(self.limits),
            }
        )

    async def predict(self, request: Request) -> JSONResponse:
        try:
            names, items = await self._inputs(request)
        except InputError as exc:
            return _error(exc.status, exc.reason)
        proba = await self.batcher.submit(items)
        classes = self.predictor.classes
        return JSONResponse(
            [
                {"input": n, "label": classes[int(p.argmax())], "probability": float(p.max())}
                for n, p in zip(names, proba, strict=True)
            ]
        )

    async def _inputs(self, request: Request) -> tuple[list[str], list[Any]]:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await read_body(request, self.limits.max_body_bytes)
        if kind == "multipart/form-data":
            return await self._uploads(request, body)
        if kind not in ("application/json", ""):
            raise InputError(
                415, f"content type {kind!r}: send application/json or multipart/form-data"
            )
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(400, f"body is not valid JSON ({exc})") from None
        if not isinstance(payload, dict) or len(set(payload) & {"texts", "paths"}) != 1:
            raise InputError(400, 'send a JSON object with one key, "texts" or "paths"')
        key = "texts" if "texts" in payload else "paths"
        values = self._check_list(key, payload[key])
        if key == "texts":
            return self._texts(values)
        return await self._paths(values)

    def _check_list(self, key: str, values: Any) -> list[str]:
        if not isinstance(values, list) or not values:
            raise InputError(400, f'"{key}" must be a non-empty list of strings')
        if len(values) > self.limits.max_items:
            raise InputError(413, f"{len(values)} {key}; the limit is {self.limits.max_items}")
        bad = next((i for i, v in enumerate(values) if not isinstance(v, str)), None)
        if bad is not None:
            raise InputError(400, f'"{key}"[{bad}] is {type(values[bad]).__name__}, not a string')
        return values

    def _texts(self, texts: list[str]) -> tuple[list[str], list[Any]]:
        if self.takes_files:
            raise InputError(
                422, f'this model takes {self.modality} files: send "paths" or upload files'
            )
        limit = self.limits.max_text_chars
        long = next((i for i, t in enumerate(texts) if len(t) > limit), None)
        if long is not None:
            raise InputError(413, f"texts[{long}] has {len(texts[long])} characters; limit {limit}")
        return texts, list(texts)

    @property
    def _decode(self) -> Any:
        try:
            return DECODERS[self.modality]
        except KeyError:
            raise InputError(422, f"this server cannot decode {self.modality} files") from None

    async def _paths(self, paths: list[str]) -> tuple[list[str], list[Any]]:
        if not self.takes_files:
            raise InputError(422, 'this model takes texts: send {"texts": [...]}')
        if not self.allow_paths:
            raise InputError(403, "this server does not read paths (--allow-paths): upload files")
        limit = self.limits.max_image_pixels
        decode = self._decode
        images = await asyncio.to_thread(lambda: [decode(p, p, limit) for p in paths])
        return paths, images

    async def _uploads(self, request: Request, body: bytes) -> tuple[list[str], list[Any]]:
        if not self.takes_files:
            raise InputError(422, 'this model takes texts: send {"texts": [...]} as JSON')

        async def replay() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            form = await Request(request.scope, replay).form(
                max_files=self.limits.max_items, max_fields=self.limits.max_items
            )
        except HTTPException as exc:
            raise InputError(
                400 if exc.status_code >= 500 else exc.status_code, exc.detail
            ) from None
        except Exception as exc:  # the multipart parser's own errors
            raise InputError(400, f"malformed multipart body ({exc})") from None
        files = [(k, v) for k, v in form.multi_items() if hasattr(v, "read")]
        if not files:
            raise InputError(400, "the multipart body holds no file")
        limit = self.limits.max_image_pixels
        uploads = [(f.filename or key, await f.read()) for key, f in files]
        decode = self._decode
        images = await asyncio.to_thread(
            lambda: [decode(data, name, limit) for name, data in uploads]
        )
        return [name for name, _ in uploads], images


def create_app(
    predictor: Any,
    runtime: str = "torch",
    limits: Limits | None = None,
    allow_paths: bool = True,
    batch: int = 64,
) -> Starlette:
    """The Starlette app serving ``predictor`` (a loaded bundle, any runtime)."""
    handlers = PredictApp(predictor, runtime, limits or Limits(), allow_paths, batch)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await handlers.batcher.start()
        try:
            yield
        finally:
            await handlers.batcher.stop()

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return _error(exc.status_code, str(exc.detail))

    async def input_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, InputError)
        return _error(exc.status, exc.reason)

    routes = [
        Route("/health", handlers.health, methods=["GET"]),
        Route("/metadata", handlers.metadata, methods=["GET"]),
        Route("/predict", handlers.predict, methods=["POST"]),
    ]
    handlers_by_type: dict[Any, Callable[..., Any]] = {
        HTTPException: http_error,
        InputError: input_error,
    }
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers_by_type)
    app.state.handlers = handlers
    return app


def is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def serve(
    bundle: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    runtime: str = "torch",
    limits: Limits | None = None,
    allow_paths: bool | None = None,
    log_level: str = "info",
) -> None:
    """Load ``bundle`` and serve it with uvicorn until interrupted. Paths on the server's
    disk are read only on a loopback host unless ``allow_paths`` says otherwise."""
    import uvicorn

    from headstart.bundle._runtime import load_predictor

    predictor = load_predictor(bundle, runtime)
    allow = is_loopback(host) if allow_paths is None else allow_paths
    app = create_app(predictor, runtime, limits, allow)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)


__all__ = ["InputError", "Limits", "create_app", "is_loopback", "serve"]
