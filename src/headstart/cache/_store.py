"""A content-addressed store of extracted features: extract once, reuse everywhere.

A backbone's *fingerprint* hashes everything that changes its output: the model name and
architecture, a digest of its weights (the tensors themselves, so a fine-tuned or
hub-downloaded model gets its own entry), its preprocessing and its cut point. Within a
fingerprint, each input is keyed by the hash of its bytes, so the same image reached by
another path, or a later dataset that shares examples, costs no forward pass.

Layout: ``ROOT/<fp[:2]>/<fp>/meta.json`` plus ``shard-<time>-<pid>-<sha256>.npz`` files
(``keys``, ``features``). Shards are written to a temporary file and renamed, so a run
killed midway leaves whole shards only. The name carries the SHA-256 of the file's bytes,
verified on every read: a corrupt shard is reported (a :class:`CacheWarning`), deleted and
its features recomputed; a shard of another version (no checksum in its name) or of
another width is deleted and recomputed too. A damaged cache never fails a run.

Extraction streams: each shard is written as soon as ``shard_size`` new features are
computed, so memory holds one batch of inputs, one shard of new features and the result
(one row per input asked for), whatever the dataset's size, and a run killed midway keeps
its finished shards. The engine that runs the backbone (:mod:`headstart.cache._engine`)
is no part of the key: every engine's features pass a parity check against the fp32
reference's first.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from headstart._io import atomic_write_bytes
from headstart._progress import track
from headstart.cache._engine import EngineReport, check_engine, graph_path, run_engines
from headstart.data._loader import iter_batches
from headstart.zoo._backbone import Backbone

FORMAT_VERSION = 1
_DIGEST_CHARS = 40  # of the shard's SHA-256, in its name


class CacheWarning(UserWarning):
    """A feature-cache shard was damaged or stale: deleted, its features recomputed."""


def default_cache_dir() -> Path:
    env = os.environ.get("HEADSTART_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "headstart" / "features"


def state_digest(module: torch.nn.Module) -> str:
    """BLAKE2 digest over the names, shapes, dtypes and bytes of every tensor of ``module``."""
    h = hashlib.blake2b(digest_size=20)
    for name, t in sorted(module.state_dict().items()):
        if name.startswith("source_head."):  # not on the feature path: same entry either way
            continue
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def fingerprint(backbone: Backbone) -> tuple[str, dict]:
    """``(hex digest, the description it hashes)`` of what determines the features."""
    spec = backbone.spec
    desc = {
        "format": FORMAT_VERSION,
        "model": spec.name,
        "arch": spec.arch,
        "weights": state_digest(backbone),
        "preprocess": spec.to_dict()["preprocess"],
        "layer": backbone.layer,
    }
    digest = hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()
    return digest, desc


class FeatureStore:
    """Feature cache on disk. ``forward_passes`` counts inputs run through a backbone;
    ``engine``: the extraction engine (``auto``, ``torch``, ``onnx``, ``bf16``);
    ``engine_report``: what the last extraction ran on (``None`` before any)."""

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        shard_size: int = 1024,
        engine: str = "auto",
    ) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.shard_size = shard_size
        self.engine = check_engine(engine)
        self.forward_passes = 0
        self.extract_seconds = 0.0
        self.engine_report: EngineReport | None = None

    def check_writable(self) -> None:
        """Fail now, in one line, if features could not be stored (before any work)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            ok = self.root.is_dir() and os.access(self.root, os.W_OK | os.X_OK)
        except OSError as exc:
            raise ValueError(
                f"feature cache {self.root}: cannot be created ({exc}); "
                "set HEADSTART_CACHE to a writable folder"
            ) from None
        if not ok:
            raise ValueError(
                f"feature cache {self.root}: not writable; set HEADSTART_CACHE to a writable folder"
            )

    def entry_dir(self, backbone: Backbone) -> Path:
        fp, _ = fingerprint(backbone)
        return self.root / fp[:2] / fp

    def load(self, backbone: Backbone, entry: Path | None = None) -> dict[str, np.ndarray]:
        """All cached features of this backbone, by input key."""
        out: dict[str, np.ndarray] = {}
        d = entry or self.entry_dir(backbone)
        if not d.is_dir():
            return out
        for shard in sorted(d.glob("shard-*.npz")):
            out.update(self._read_shard(shard, backbone.feature_dim))
        return out

    @staticmethod
    def _read_shard(shard: Path, width: int) -> dict[str, np.ndarray]:
        """The shard's features by key, or nothing (and the shard deleted) when it is corrupt,
        of another version or of another width."""
        parts = shard.stem.split("-")
        problem = ""
        if len(parts) != 4 or len(parts[3]) != _DIGEST_CHARS:
            problem = "written by another headstart version"
        else:
            try:
                raw = shard.read_bytes()
            except OSError:  # deleted meanwhile by another run: nothing to read
                return {}
            if hashlib.sha256(raw).hexdigest()[:_DIGEST_CHARS] != parts[3]:
                problem = "corrupt (checksum mismatch)"
            else:
                try:
                    with np.load(io.BytesIO(raw), allow_pickle=False) as z:
                        keys, feats = z["keys"].tolist(), z["features"]
                except Exception as exc:  # a checksummed shard that numpy cannot read
                    problem = f"unreadable ({exc})"
                else:
                    if feats.ndim != 2 or feats.shape[1] != width or len(keys) != len(feats):
                        problem = f"of another shape ({feats.shape}, features are {width} wide)"
                    else:
                        return dict(zip(keys, feats, strict=True))
        if problem.startswith(("corrupt", "unreadable")):
            warnings.warn(
                f"{shard}: feature-cache shard {problem}; deleted, to be recomputed",
                CacheWarning,
                stacklevel=4,
            )
        with contextlib.suppress(OSError):  # already gone, or a read-only cache
            shard.unlink()
        return {}

    def _write_shard(self, d: Path, desc: dict, keys: list[str], feats: np.ndarray) -> None:
        d.mkdir(parents=True, exist_ok=True)
        meta = d / "meta.json"
        if not meta.exists():
            atomic_write_bytes(meta, json.dumps(desc, indent=1).encode())
        fd, tmp = tempfile.mkstemp(prefix=".shard-", suffix=".npz", dir=d)
        os.close(fd)
        try:
            np.savez(tmp, keys=np.array(keys), features=feats.astype(np.float32))
            digest = hashlib.sha256(Path(tmp).read_bytes()).hexdigest()[:_DIGEST_CHARS]
            os.replace(tmp, d / f"shard-{time.time_ns():x}-{os.getpid()}-{digest}.npz")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def features(
        self,
        backbone: Backbone,
        items: Sequence[str],
        keys: Sequence[str],
        modality: str,
        batch_size: int = 64,
        description: str = "extracting features",
    ) -> np.ndarray:
        """Features for ``items`` (one row each), extracting only those not cached yet."""
        fp, desc = fingerprint(backbone)
        entry = self.root / fp[:2] / fp
        cached = self.load(backbone, entry)
        out = np.zeros((len(keys), backbone.feature_dim), dtype=np.float32)
        missing: dict[str, int] = {}
        for i, k in enumerate(keys):
            if k in cached:
                out[i] = cached[k]
            elif k not in missing:
                missing[k] = i
        del cached
        if missing:
            todo = list(missing.values())
            start = time.perf_counter()
            report = EngineReport(self.engine)
            pending: list[int] = []  # rows of ``out`` not in a shard yet
            for idx, feats in iter_features(
                backbone,
                [items[i] for i in todo],
                modality,
                batch_size,
                description,
                self,
                self.engine,
                graph_path(entry),
                report,
            ):
                rows = [todo[j] for j in idx]
                out[rows] = feats
                pending += rows
                while len(pending) >= self.shard_size:
                    head, pending = pending[: self.shard_size], pending[self.shard_size :]
                    self._write_shard(entry, desc, [keys[r] for r in head], out[head])
            if pending:
                self._write_shard(entry, desc, [keys[r] for r in pending], out[pending])
            self.engine_report = report
            self.extract_seconds += time.perf_counter() - start
            first = {k: out[i] for k, i in missing.items()}
            for i, k in enumerate(keys):  # repeated keys take their first row's features
                if missing.get(k, i) != i:
                    out[i] = first[k]
        return out


def iter_features(
    backbone: Backbone,
    items: Sequence[str],
    modality: str,
    batch_size: int = 64,
    description: str = "extracting features",
    counter: FeatureStore | None = None,
    engine: str = "torch",
    graph: Path | None = None,
    report: EngineReport | None = None,
) -> Iterator[tuple[list[int], np.ndarray]]:
    """``(indices, features)`` per batch of ``items`` through the frozen backbone (eval
    mode, no autograd) on ``engine`` (:mod:`headstart.cache._engine`; ``graph``: where an
    ONNX graph of it is kept); ``report`` records the engine used."""
    modes = [(m, m.training) for m in backbone.modules()]  # restored module by module, so
    backbone.eval()  # BatchNorm frozen in inference mode stays so afterwards
    report = report if report is not None else EngineReport(engine)
    batches = iter_batches(backbone, items, modality, batch_size=batch_size)
    steps = (len(items) + batch_size - 1) // batch_size
    try:
        runs = run_engines(backbone, iter(batches), engine, len(items), graph, report)
        for idx, feats in track(runs, steps, description):
            if counter is not None:
                counter.forward_passes += len(idx)
            yield idx, feats
    finally:
        for module, mode in modes:
            module.training = mode


def extract(
    backbone: Backbone,
    items: Sequence[str],
    modality: str,
    batch_size: int = 64,
    description: str = "extracting features",
    counter: FeatureStore | None = None,
    engine: str = "torch",
) -> np.ndarray:
    """Run the frozen backbone over ``items`` (eval mode, no autograd); ``(N, D)`` float32.
    Not cached: ``engine`` ``auto`` or ``onnx`` exports the graph anew."""
    out = np.zeros((len(items), backbone.feature_dim), dtype=np.float32)
    for idx, feats in iter_features(
        backbone, items, modality, batch_size, description, counter, engine
    ):
        out[idx] = feats
    return out
