"""The HTTP app on tiny bundles (Starlette's TestClient), the batcher, and one real
``headstart serve`` process on loopback."""

from __future__ import annotations

import asyncio
import io
import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient
from typer.testing import CliRunner

import headstart
from headstart.bundle._export import export_onnx
from headstart.bundle._runtime import load_predictor
from headstart.cli import app as cli
from headstart.serve import Limits, create_app
from headstart.serve._batcher import Batcher

FAST = {"epochs": 2, "head_epochs": 10}


@pytest.fixture
def image_bundle(tiny_images: Path, tmp_path: Path, store) -> Path:
    out = tmp_path / "image-model"
    headstart.fit(tiny_images, out=out, model="test_cnn.tiny", store=store, **FAST)
    return out


@pytest.fixture
def text_bundle(tiny_texts: Path, tmp_path: Path, store) -> Path:
    out = tmp_path / "text-model"
    headstart.fit(tiny_texts, out=out, model="test_words.tiny", store=store, **FAST)
    return out


def _client(bundle: Path, runtime: str = "torch", **kwargs) -> TestClient:
    return TestClient(create_app(load_predictor(bundle, runtime), runtime, **kwargs))


@pytest.fixture
def text_client(text_bundle: Path) -> Iterator[TestClient]:
    with _client(text_bundle) as client:
        yield client


@pytest.fixture
def image_client(image_bundle: Path) -> Iterator[TestClient]:
    with _client(image_bundle, limits=Limits(max_items=8, max_body_bytes=50_000)) as client:
        yield client


def _cli_records(bundle: Path, inputs: list[str]) -> list[dict]:
    result = CliRunner().invoke(cli, ["predict", str(bundle), *inputs, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _png(size: tuple[int, int] = (40, 40), colour: str = "red") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def _same_records(got: list[dict], want: list[dict]) -> None:
    assert [(r["input"], r["label"]) for r in got] == [(r["input"], r["label"]) for r in want]
    for a, b in zip(got, want, strict=True):
        assert a["probability"] == pytest.approx(b["probability"], abs=1e-6)


def test_health_and_metadata(text_client: TestClient, text_bundle: Path) -> None:
    assert text_client.get("/health").json() == {"status": "ok"}
    meta = text_client.get("/metadata").json()
    assert meta["model"] == "test_words.tiny" and meta["modality"] == "text"
    assert meta["classes"] == headstart.load(text_bundle).classes
    assert meta["version"] == headstart.__version__ and meta["runtime"] == "torch"
    assert meta["accepts"] == ["texts"] and meta["limits"]["max_items"] == 64


def test_texts_give_the_records_of_predict_json(text_client: TestClient, text_bundle: Path):
    texts = ["goal match team", "recipe bake oven", "", "laptop code 7"]
    response = text_client.post("/predict", json={"texts": texts})
    assert response.status_code == 200
    _same_records(response.json(), _cli_records(text_bundle, texts))


def test_paths_and_uploads_give_the_records_of_predict_json(
    image_client: TestClient, image_bundle: Path, tiny_images: Path
) -> None:
    paths = sorted(str(p) for p in tiny_images.rglob("*.png"))[::7]
    want = _cli_records(image_bundle, paths)
    response = image_client.post("/predict", json={"paths": paths})
    assert response.status_code == 200, response.text
    _same_records(response.json(), want)
    files = [("files", (Path(p).name, Path(p).read_bytes(), "image/png")) for p in paths]
    response = image_client.post("/predict", files=files)
    assert response.status_code == 200, response.text
    got = response.json()
    assert [r["input"] for r in got] == [Path(p).name for p in paths]
    _same_records([{**r, "input": p} for r, p in zip(got, paths, strict=True)], want)


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"content": b"{not json"}, 400, "not valid JSON"),
        ({"content": b"\xff\xfe\x00"}, 400, "not valid JSON"),
        ({"json": ["a list"]}, 400, 'one key, "texts" or "paths"'),
        ({"json": {"text": ["typo"]}}, 400, 'one key, "texts" or "paths"'),
        ({"json": {"texts": ["a"], "paths": ["b"]}}, 400, "one key"),
        ({"json": {"texts": "not a list"}}, 400, "non-empty list of strings"),
        ({"json": {"texts": []}}, 400, "non-empty list of strings"),
        ({"json": {"texts": ["ok", 3]}}, 400, '"texts"[1] is int'),
        ({"json": {"texts": [None]}}, 400, "NoneType, not a string"),
        ({"json": {"texts": ["x"] * 65}}, 413, "65 texts; the limit is 64"),
        ({"json": {"texts": ["x" * 20_001]}}, 413, "20001 characters"),
        ({"json": {"paths": ["a.png"]}}, 422, "this model takes texts"),
        ({"files": [("f", ("a.png", b"x", "image/png"))]}, 422, "this model takes texts"),
        ({"content": b"hello", "headers": {"content-type": "text/plain"}}, 415, "text/plain"),
    ],
)
def test_bad_text_requests_get_a_4xx_with_the_reason(
    text_client: TestClient, body: dict, status: int, reason: str
) -> None:
    response = text_client.post("/predict", **body)
    assert response.status_code == status, response.text
    assert reason in response.json()["error"]


def test_bad_image_requests_get_a_4xx_with_the_reason(
    image_client: TestClient, tmp_path: Path
) -> None:
    good = _png()
    (tmp_path / "broken.png").write_bytes(good[: len(good) // 2])
    (tmp_path / "text.png").write_text("not an image")
    cases = [
        ({"json": {"texts": ["a"]}}, 422, "this model takes image files"),
        ({"json": {"paths": [str(tmp_path / "missing.png")]}}, 422, "no such file"),
        ({"json": {"paths": [str(tmp_path)]}}, 422, "a folder"),
        ({"json": {"paths": [str(tmp_path / "text.png")]}}, 422, "not a readable image"),
        ({"json": {"paths": [str(tmp_path / "broken.png")]}}, 422, "image"),
        ({"json": {"paths": ["x.png"] * 9}}, 413, "9 paths; the limit is 8"),
        ({"files": [("f", ("a.png", b"GIF89a garbage", "image/gif"))]}, 422, "a.png: not a"),
        ({"files": [("f", ("big.png", b"x" * 60_000, "image/png"))]}, 413, "the limit is 50000"),
        ({"data": {"field": "value"}, "files": []}, 415, "x-www-form-urlencoded"),
        (  # chunked, no Content-Length: counted as it arrives
            {"content": iter([b"x" * 30_000] * 2), "headers": {"content-type": "application/json"}},
            413,
            "body over the limit of 50000 bytes",
        ),
        (
            {"content": b"--b\r\n", "headers": {"content-type": "multipart/form-data; boundary=b"}},
            400,
            "multipart",
        ),
    ]
    for body, status, reason in cases:
        response = image_client.post("/predict", **body)
        assert response.status_code == status, (body, response.text)
        assert reason in response.json()["error"], (body, response.text)
    assert image_client.get("/predict").status_code == 405
    assert image_client.get("/nowhere").status_code == 404
    many = [("f", (f"{i}.png", good, "image/png")) for i in range(9)]
    response = image_client.post("/predict", files=many)
    assert response.status_code in (400, 413) and "error" in response.json()


def test_pixel_limit_and_paths_refused_when_not_allowed(image_bundle: Path) -> None:
    with _client(image_bundle, limits=Limits(max_image_pixels=1000)) as client:
        response = client.post("/predict", files=[("f", ("a.png", _png(), "image/png"))])
        assert response.status_code == 413 and "1600 pixels" in response.json()["error"]
    with _client(image_bundle, allow_paths=False) as client:
        assert client.get("/metadata").json()["accepts"] == ["multipart files"]
        response = client.post("/predict", json={"paths": ["/etc/passwd"]})
        assert response.status_code == 403 and "upload files" in response.json()["error"]


def test_random_bodies_never_give_a_500(text_client: TestClient, image_client: TestClient):
    rng = random.Random(0)
    kinds = ["application/json", "multipart/form-data; boundary=xyz", "", "image/png"]
    for _ in range(60):
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))
        if rng.random() < 0.3:
            body = json.dumps({"texts": [body.decode("latin-1")]}).encode()
        headers = {"content-type": rng.choice(kinds)}
        for client in (text_client, image_client):
            response = client.post("/predict", content=body, headers=headers)
            assert response.status_code < 500, (body, headers, response.text)
            if response.status_code >= 400:
                assert response.json()["error"]


def test_onnx_runtime_serves_the_same_records(text_bundle: Path, text_client: TestClient):
    export_onnx(text_bundle)
    texts = ["goal match", "garlic butter dessert", "robot battery"]
    with _client(text_bundle, "onnx") as client:
        assert client.get("/metadata").json()["runtime"] == "onnx"
        got = client.post("/predict", json={"texts": texts}).json()
    _same_records(got, text_client.post("/predict", json={"texts": texts}).json())


def test_batcher_merges_concurrent_requests_and_splits_the_answers() -> None:
    calls: list[int] = []

    def predict(items: list[int]) -> np.ndarray:
        calls.append(len(items))
        time.sleep(0.05)
        return np.array([[float(x)] for x in items])

    async def main() -> list[np.ndarray]:
        batcher = Batcher(predict, max_items=10)
        await batcher.start()
        try:
            jobs = [batcher.submit(list(range(i * 3, i * 3 + 3))) for i in range(6)]
            return await asyncio.gather(*jobs)
        finally:
            await batcher.stop()

    results = asyncio.run(main())
    for i, r in enumerate(results):
        assert r[:, 0].tolist() == [i * 3, i * 3 + 1, i * 3 + 2]
    assert sum(calls) == 18 and max(calls) <= 9 and len(calls) < 6  # batched, bounded


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_command_on_loopback(text_bundle: Path) -> None:
    port = _free_port()
    command = [sys.executable, "-c", "from headstart.cli import main; main()", "serve"]
    proc = subprocess.Popen(
        [*command, str(text_bundle), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as r:
                    assert json.load(r) == {"status": "ok"}
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        request = urllib.request.Request(
            f"{base}/predict",
            data=json.dumps({"texts": ["goal match", "oven sauce"]}).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as r:
            records = json.load(r)
        _same_records(records, _cli_records(text_bundle, ["goal match", "oven sauce"]))
        bad = urllib.request.Request(
            f"{base}/predict", data=b"{", headers={"content-type": "application/json"}
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(bad, timeout=10)
        assert err.value.code == 400
    finally:
        proc.terminate()
        proc.wait(timeout=20)
