"""Batching raw items into model inputs, decoding images on a background thread."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from headstart.data._modality import get_modality
from headstart.data._transforms import Augment


def load_items(items: Sequence[Any], modality: str) -> list[Any]:
    """Each item as its modality loads it (image paths become RGB PIL images; texts and
    already-loaded images pass through)."""
    load = get_modality(modality).load
    return [load(x) for x in items]


def iter_batches(
    backbone: Any,
    items: Sequence[Any],
    modality: str,
    batch_size: int = 32,
    train: bool = False,
    augment: Augment | None = None,
    order: Sequence[int] | None = None,
) -> Iterator[tuple[list[int], Any]]:
    """Yield ``(indices, model_inputs)`` batches; the next batch is decoded while the
    current one is being computed (one background thread: PIL releases the GIL)."""
    order = list(range(len(items))) if order is None else list(order)
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]

    def prepare(idx: list[int]) -> Any:
        raw = load_items([items[i] for i in idx], modality)
        return backbone.collate(raw, train=train, augment=augment)

    if not chunks:
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(prepare, chunks[0])
        for k, idx in enumerate(chunks):
            batch = future.result()
            if k + 1 < len(chunks):
                future = pool.submit(prepare, chunks[k + 1])
            yield idx, batch
