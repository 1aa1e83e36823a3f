r"""What a continual bundle remembers of its past steps (``continual.safetensors``).

* ``memory_x`` ``(M, D)`` / ``memory_y`` ``(M,)`` / ``memory_task`` ``(M,)``: the replay
  memory, cached backbone features of at most ``memory_size`` training examples, balanced
  over the (step, class) cells (:func:`balanced_rows`: class-balanced when each class
  belongs to one step, step- and class-balanced in a domain-incremental sequence, where
  every step brings the same classes); the only past *training* data any method sees.
* ``eval_x`` / ``eval_y`` / ``eval_task``: the held-out test features of every step, kept
  to score the accuracy matrix after later steps; never trained on.
* ``fisher.<param>``: EWC's diagonal Fisher information of the head's parameters,
  summed over the steps (:func:`fisher_diagonal`); rows of classes added later are 0.
* ``proto_centre`` ``(D,)``, ``proto_sums`` ``(K, D)``, ``proto_counts`` ``(K,)``: for
  prototypes, the sum of every training example's transformed feature per class (the
  SimpleShot ``cl2n`` transform about the first step's mean), exact class means without
  storing examples.
* ``raw_sums`` ``(K, D)`` and ``scatter`` ``(D, D)``: the per-class sums and the
  second-moment matrix :math:`\sum_n x_n x_n^\top` of every training feature, for the
  streaming LDA (``slda``): the exact class means and shared covariance of every example
  ever seen, without storing them.

Labels are indices into ``classes`` (every class seen, in the order the steps added them);
``tasks`` lists each step's classes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

STATE_NAME = "continual.safetensors"


@dataclass
class ContinualState:
    """The past of a continual model (see the module docstring)."""

    classes: list[str]
    tasks: list[list[str]]
    memory_size: int
    memory_x: np.ndarray
    memory_y: np.ndarray
    eval_x: np.ndarray
    eval_y: np.ndarray
    eval_task: np.ndarray
    proto_centre: np.ndarray
    proto_sums: np.ndarray
    proto_counts: np.ndarray
    raw_sums: np.ndarray
    scatter: np.ndarray
    fisher: dict[str, np.ndarray] = field(default_factory=dict)
    matrix: list[list[float]] = field(default_factory=list)
    matrix_task: list[list[float]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    memory_task: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        if len(self.memory_task) != len(self.memory_y):  # a bundle from before memory_task:
            first = {}  # every class then belonged to one step, the one that added it
            for t, task in enumerate(self.tasks):
                for c in task:
                    first.setdefault(self.classes.index(c), t)
            self.memory_task = np.array(
                [first.get(int(c), 0) for c in self.memory_y], dtype=np.int64
            )

    @property
    def dim(self) -> int:
        return int(self.proto_centre.shape[0])

    def add_step(
        self,
        classes: list[str],
        x: np.ndarray,
        y: np.ndarray,
        x_test: np.ndarray,
        y_test: np.ndarray,
        seed: int,
    ) -> None:
        """Record a step's classes, its test rows, its class sums, and refresh the memory
        (``y``, ``y_test``: indices into ``self.classes`` after the new classes)."""
        self.tasks.append(list(classes))
        self.eval_x = np.concatenate([self.eval_x, x_test.astype(np.float32)])
        self.eval_y = np.concatenate([self.eval_y, y_test.astype(np.int64)])
        self.eval_task = np.concatenate(
            [self.eval_task, np.full(len(y_test), len(self.tasks) - 1, dtype=np.int64)]
        )
        k = len(self.classes)
        sums = np.zeros((k, self.dim), dtype=np.float64)
        counts = np.zeros(k, dtype=np.float64)
        sums[: len(self.proto_sums)], counts[: len(self.proto_counts)] = (
            self.proto_sums,
            self.proto_counts,
        )
        z = cl2n(x, self.proto_centre)
        np.add.at(sums, y, z)
        np.add.at(counts, y, 1.0)
        self.proto_sums, self.proto_counts = sums, counts
        raw = np.zeros((k, self.dim), dtype=np.float64)
        raw[: len(self.raw_sums)] = self.raw_sums
        x64 = np.asarray(x, dtype=np.float64)
        np.add.at(raw, y, x64)
        self.raw_sums = raw
        self.scatter = self.scatter + x64.T @ x64
        px = np.concatenate([self.memory_x, x.astype(np.float32)])
        py = np.concatenate([self.memory_y, y.astype(np.int64)])
        pt = np.concatenate([self.memory_task, np.full(len(y), len(self.tasks) - 1)])
        keep = balanced_rows(pt * (k + 1) + py, self.memory_size, seed)
        self.memory_x, self.memory_y, self.memory_task = px[keep], py[keep], pt[keep]

    def save(self, folder: Path) -> None:
        """``continual.safetensors`` in ``folder`` (tensors; the lists go in its metadata)."""
        from safetensors.numpy import save_file

        arrays = {
            "memory_x": self.memory_x.astype(np.float32),
            "memory_y": self.memory_y.astype(np.int64),
            "memory_task": self.memory_task.astype(np.int64),
            "eval_x": self.eval_x.astype(np.float32),
            "eval_y": self.eval_y.astype(np.int64),
            "eval_task": self.eval_task.astype(np.int64),
            "proto_centre": self.proto_centre.astype(np.float64),
            "proto_sums": self.proto_sums.astype(np.float64),
            "proto_counts": self.proto_counts.astype(np.float64),
            "raw_sums": self.raw_sums.astype(np.float64),
            "scatter": self.scatter.astype(np.float64),
            **{f"fisher.{k}": v.astype(np.float32) for k, v in self.fisher.items()},
        }
        meta = {
            "classes": self.classes,
            "tasks": self.tasks,
            "memory_size": self.memory_size,
            "matrix": self.matrix,
            "matrix_task": self.matrix_task,
            "steps": self.steps,
        }
        save_file(
            {k: np.ascontiguousarray(v) for k, v in arrays.items()},
            str(folder / STATE_NAME),
            metadata={"continual": json.dumps(meta)},
        )

    @classmethod
    def load(cls, folder: Path) -> ContinualState:
        from safetensors import safe_open

        path = folder / STATE_NAME
        with safe_open(str(path), framework="numpy") as f:
            meta = json.loads((f.metadata() or {})["continual"])
            a = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        fisher = {k[len("fisher.") :]: v for k, v in a.items() if k.startswith("fisher.")}
        return cls(
            list(meta["classes"]),
            [list(t) for t in meta["tasks"]],
            int(meta["memory_size"]),
            a["memory_x"],
            a["memory_y"],
            a["eval_x"],
            a["eval_y"],
            a["eval_task"],
            a["proto_centre"],
            a["proto_sums"],
            a["proto_counts"],
            a["raw_sums"],
            a["scatter"],
            fisher,
            [list(r) for r in meta["matrix"]],
            [list(r) for r in meta.get("matrix_task", [])],
            list(meta["steps"]),
            a.get("memory_task", np.zeros(0, dtype=np.int64)),
        )


def empty_state(dim: int, memory_size: int, centre: np.ndarray) -> ContinualState:
    """A state with no step yet; ``centre``: the mean feature the prototypes are centred on."""
    z = np.zeros((0, dim), dtype=np.float32)
    none = np.zeros(0, dtype=np.int64)
    return ContinualState(
        [],
        [],
        memory_size,
        z,
        none,
        z,
        none,
        none,
        centre.astype(np.float64),
        np.zeros((0, dim)),
        np.zeros(0),
        np.zeros((0, dim)),
        np.zeros((dim, dim)),
    )


def cl2n(x: np.ndarray, centre: np.ndarray) -> np.ndarray:
    r"""SimpleShot's transform :math:`z = (x - m) / \lVert x - m \rVert`, ``(N, D)``."""
    z = np.asarray(x, dtype=np.float64) - centre
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)


def balanced_rows(keys: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Indices (sorted) of at most ``size`` rows balanced over the distinct ``keys``: each
    of the ``K`` keys keeps ``size // K`` rows (a key with fewer keeps all it has, and the
    spare places go to the others in turn, in key order), chosen uniformly at random
    (``seed``) among its rows."""
    if size <= 0 or not len(keys):
        return np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    groups = np.unique(keys)
    rows = {g: rng.permutation(np.flatnonzero(keys == g)) for g in groups}
    quota = dict.fromkeys(groups, 0)
    left = size
    while left > 0:
        open_ = [g for g in groups if quota[g] < len(rows[g])]
        if not open_:
            break
        share = max(left // len(open_), 1)
        for g in open_:
            take = min(share, len(rows[g]) - quota[g], left)
            quota[g] += take
            left -= take
            if left == 0:
                break
    return np.sort(np.concatenate([rows[g][: quota[g]] for g in groups]))


def update_memory(
    mx: np.ndarray, my: np.ndarray, x: np.ndarray, y: np.ndarray, size: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """A class-balanced replay memory of at most ``size`` rows from the old memory and a
    step's training rows (:func:`balanced_rows` over the labels)."""
    px = np.concatenate([mx, x.astype(np.float32)])
    py = np.concatenate([my, y.astype(np.int64)])
    keep = balanced_rows(py, size, seed)
    return px[keep], py[keep]


def fisher_diagonal(
    head: nn.Module, x: np.ndarray, y: np.ndarray, max_rows: int = 2000, seed: int = 0
) -> dict[str, np.ndarray]:
    r"""The empirical diagonal Fisher information of ``head``'s parameters on ``(x, y)``:
    :math:`F_i = \frac{1}{N}\sum_n (\partial \log p_\theta(y_n \mid x_n) / \partial\theta_i)^2`
    (per-example gradients; at most ``max_rows`` rows, drawn at random)."""
    from torch.func import functional_call, grad, vmap

    if len(y) > max_rows:
        pick = np.random.default_rng(seed).choice(len(y), max_rows, replace=False)
        x, y = x[pick], y[pick]
    was = head.training
    head.eval()
    params = {k: v.detach() for k, v in head.named_parameters()}

    def nll(p: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        logits = functional_call(head, p, (xi[None],))
        return nn.functional.cross_entropy(logits, yi[None])

    total = {k: torch.zeros_like(v) for k, v in params.items()}
    xt = torch.from_numpy(np.asarray(x, dtype=np.float32))
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    for lo in range(0, len(yt), 256):
        g = vmap(grad(nll), in_dims=(None, 0, 0))(params, xt[lo : lo + 256], yt[lo : lo + 256])
        for k in total:
            total[k] += (g[k] ** 2).sum(0)
    head.train(was)
    return {k: (v / max(len(yt), 1)).numpy() for k, v in total.items()}


def pad_rows(a: np.ndarray, rows: int) -> np.ndarray:
    """``a`` with zero rows appended along its first axis up to ``rows``."""
    if a.shape[0] >= rows:
        return a
    return np.concatenate([a, np.zeros((rows - a.shape[0], *a.shape[1:]), dtype=a.dtype)])


__all__ = [
    "STATE_NAME",
    "ContinualState",
    "balanced_rows",
    "cl2n",
    "empty_state",
    "fisher_diagonal",
    "pad_rows",
    "update_memory",
]
