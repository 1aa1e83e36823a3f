"""Serving benchmark: a bounded load test of ``headstart serve`` on loopback, eager PyTorch
against ONNX Runtime against its int8 copy.

A real packaged model on real data: EfficientNet-Lite0 at 112 px fitted (``extract``) on
Fashion-MNIST (``--train`` images per class; ``--test`` per class become the bundle's test
split and the request images), then ``headstart export --format onnx --quantize int8``.
For each runtime a fresh ``headstart serve`` process listens on 127.0.0.1; after a warm-up,
``--clients`` threads (keep-alive connections) each upload one PNG per request, back to
back, for ``--seconds``. Measured: requests (= images) per second, p50 / p99 latency,
errors (any non-200 answer or connection error; must be 0), peak resident memory of the
server process (``VmHWM``). Client and server share the machine's cores.

Writes ``OUT/serve.json`` and ``OUT/serve.md`` (atomically). Traffic goes to loopback
only, and every loop is bounded in time.

    .venv/bin/python bench/serve.py            # about 2.5 minutes on 2 cores
    .venv/bin/python bench/serve.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODEL = "efficientnet_lite0.in1k"
IMAGE_SIZE = 112
RUNTIMES = ("torch", "onnx", "onnx-int8")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _wait_ready(port: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stdout.read()}")  # type: ignore[union-attr]
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("server did not start")


def _client(
    port: int, bodies: list[tuple[bytes, str]], stop_at: float, offset: int, out: dict
) -> None:
    """One client: back-to-back requests on a keep-alive connection until ``stop_at``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies, errors, i = [], 0, offset
    while time.monotonic() < stop_at:
        body, kind = bodies[i % len(bodies)]
        i += 1
        start = time.perf_counter()
        try:
            conn.request("POST", "/predict", body=body, headers={"content-type": kind})
            response = conn.getresponse()
            payload = response.read()
            ok = response.status == 200 and len(json.loads(payload)) == 1
        except (OSError, http.client.HTTPException, ValueError):
            ok = False
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        latencies.append(time.perf_counter() - start)
        errors += not ok
    conn.close()
    out["latencies"], out["errors"] = latencies, errors


def load_test(
    bundle: Path, runtime: str, bodies: list[tuple[bytes, str]], clients: int, seconds: float
) -> dict[str, Any]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-c", "from headstart.cli import main; main()", "serve", str(bundle)]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port), "--runtime", runtime],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        t0 = time.perf_counter()
        _wait_ready(port, proc)
        startup = time.perf_counter() - t0
        warm: dict = {}
        _client(port, bodies, time.monotonic() + 3, 0, warm)  # warm-up, not counted
        results = [{} for _ in range(clients)]
        stop_at = time.monotonic() + seconds
        threads = [
            threading.Thread(target=_client, args=(port, bodies, stop_at, k * 37, results[k]))
            for k in range(clients)
        ]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=seconds + 60)
        wall = time.perf_counter() - start
        rss = _peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    lat = np.array([x for r in results for x in r.get("latencies", [])]) * 1000
    return {
        "runtime": runtime,
        "clients": clients,
        "seconds": wall,
        "requests": int(lat.size),
        "throughput_rps": lat.size / wall,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "mean_ms": float(lat.mean()),
        "errors": int(sum(r.get("errors", 0) for r in results))
        + clients
        - len([r for r in results if "latencies" in r]),
        "server_peak_rss_mb": rss,
        "startup_s": startup,
    }


def _markdown(report: dict[str, Any]) -> str:
    e = report["export"]
    lines = [
        f"Serving benchmark: {report['model']} at {report['image_size']} px, "
        f"{report['clients']} concurrent clients for {report['seconds_per_runtime']:.0f} s each, "
        f"one image per request (multipart upload), loopback, {report['cpu']}",
        "",
        "| runtime | requests/s | p50 ms | p99 ms | errors | server peak RSS MB | test accuracy |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["runs"]:
        lines.append(
            f"| {r['runtime']} | {r['throughput_rps']:.1f} | {r['p50_ms']:.1f} | "
            f"{r['p99_ms']:.1f} | {r['errors']} | {r['server_peak_rss_mb']:.0f} | "
            f"{r['test_accuracy']:.3f} |"
        )
    lines += [
        "",
        f"ONNX parity with PyTorch: max |logit diff| {e['parity']['max_abs_diff']:.1e} on "
        f"{e['parity']['items']} test images; int8 test accuracy change "
        f"{e['int8']['test']['accuracy_change']:+.3f} on {e['int8']['test']['n']} images.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--train", type=int, default=30, help="training images per class")
    parser.add_argument("--test", type=int, default=30, help="test images per class")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--quick", action="store_true", help="smoke run: 5 s per runtime")
    args = parser.parse_args()
    if args.quick:
        args.train, args.test, args.seconds = 10, 10, 5.0
    sys.path.insert(0, str(ROOT / "src"))
    import torch

    import headstart
    from headstart._io import atomic_write_json, atomic_write_text
    from headstart.bundle._export import export_onnx
    from headstart.datasets import fashion_mnist_folder

    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="headstart-bench-serve-") as tmp:
        os.environ["HEADSTART_CACHE"] = str(Path(tmp) / "cache")
        data = fashion_mnist_folder(Path(tmp) / "fashion", args.train, args.test)
        bundle = Path(tmp) / "bundle"
        t = time.perf_counter()
        fit = headstart.fit(data, out=bundle, model=MODEL, image_size=IMAGE_SIZE)
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        entry = export_onnx(bundle, quantize="int8")
        export_s = time.perf_counter() - t
        images = sorted((data / "test").rglob("*.png"))
        bodies = [_multipart(p.name, p.read_bytes()) for p in images]
        runs = []
        for runtime in RUNTIMES:
            print(f"== {runtime}: {args.clients} clients for {args.seconds:.0f} s", flush=True)
            run = load_test(bundle, runtime, bodies, args.clients, args.seconds)
            print(json.dumps(run), flush=True)
            runs.append(run)
        accuracy = {
            "torch": fit.metrics["splits"]["test"]["accuracy"],
            "onnx": entry["int8"]["test"]["accuracy_fp32"],
            "onnx-int8": entry["int8"]["test"]["accuracy_int8"],
        }
        for run in runs:
            run["test_accuracy"] = accuracy[run["runtime"]]
    report = {
        "benchmark": "serve",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python bench/serve.py" + (" --quick" if args.quick else ""),
        "model": MODEL,
        "image_size": IMAGE_SIZE,
        "train_images": args.train * 10,
        "test_images": len(images),
        "clients": args.clients,
        "seconds_per_runtime": args.seconds,
        "request": "POST /predict, multipart upload of one 28x28 PNG",
        "cpu": f"{os.cpu_count()} cores, torch CPU capability "
        f"{torch.backends.cpu.get_cpu_capability()}",
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "onnxruntime": entry["onnxruntime_version"],
            "headstart": headstart.__version__,
        },
        "fit_seconds": fit_s,
        "export_seconds": export_s,
        "export": {k: entry[k] for k in ("opset", "bytes", "parity", "inputs", "int8")},
        "runs": runs,
        "total_seconds": time.perf_counter() - t_start,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "serve.json", report)
    atomic_write_text(args.out / "serve.md", _markdown(report))
    print(_markdown(report))
    if any(r["errors"] for r in runs):
        sys.exit("errors during the load test")


if __name__ == "__main__":
    main()
