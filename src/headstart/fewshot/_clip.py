"""Image-text models (CLIP, SigLIP) for zero-shot image classification, via transformers.

No image-text weights ship in any package this project can install offline, so the model
comes from the Hugging Face hub by name (``openai/clip-vit-base-patch32``, also spelled
``hf/openai/...``; ``google/siglip-base-patch16-224``) or from a local folder
(``weights=``: what ``save_pretrained`` writes for the model and its processor). Offline,
a hub name fails at once with what to do, as other hub models do.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from headstart.zoo._registry import WeightsUnavailableError, hub_reachable


@dataclass
class ImageTextModel:
    """A loaded image-text model: embeddings of images and texts in one space."""

    name: str
    model: Any
    processor: Any
    batch_size: int = 32

    def encode_images(self, paths: Sequence[str]) -> np.ndarray:
        """``(N, D)`` image embeddings (not normalised)."""
        from headstart.data._items import load_image

        rows = []
        for lo in range(0, len(paths), self.batch_size):
            images = [load_image(p) for p in paths[lo : lo + self.batch_size]]
            inputs = self.processor(images=images, return_tensors="pt")
            with torch.inference_mode():
                rows.append(_pooled(self.model.get_image_features(**inputs)))
        return np.concatenate(rows).astype(np.float32)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """``(N, D)`` text embeddings (not normalised)."""
        inputs = self.processor(text=list(texts), padding=True, return_tensors="pt")
        with torch.inference_mode():
            return _pooled(self.model.get_text_features(**inputs)).astype(np.float32)


def _pooled(out: Any) -> np.ndarray:
    """The projected embedding, whichever form this transformers version returns."""
    t = out if isinstance(out, torch.Tensor) else out.pooler_output
    return t.float().numpy()


def _offline_help(name: str, why: str) -> str:
    return (
        f"{name}: an image-text model from the hub, and {why}. Download it where there is "
        "network (`model.save_pretrained(DIR)` and `processor.save_pretrained(DIR)`) and "
        "pass --weights DIR; no image-text model ships offline (see ASSETS in the README)"
    )


def image_text_model(
    model: str | None, weights: str | os.PathLike[str] | None = None
) -> ImageTextModel:
    """Load a CLIP / SigLIP model by hub name or from a local folder (see the module)."""
    from transformers import AutoModel, AutoProcessor
    from transformers.utils import logging as hf_logging

    if model is None and weights is None:
        raise ValueError(
            "zero-shot on images needs an image-text model: --model NAME (a CLIP or SigLIP "
            "name on the hub, e.g. openai/clip-vit-base-patch32) or --weights DIR"
        )
    if weights is not None:
        path = Path(weights)
        if not path.is_dir() or not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"--weights {weights}: an image-text model is a folder with config.json, the "
                "processor files and the weights (what save_pretrained writes)"
            )
        source, local, name = str(path), True, model or path.name
    else:
        assert model is not None
        source = model.removeprefix("hf/")
        local, name = False, model
        if not hub_reachable():
            raise WeightsUnavailableError(_offline_help(name, "the hub is not reachable from here"))
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        net = AutoModel.from_pretrained(source, local_files_only=local)
        processor = AutoProcessor.from_pretrained(source, local_files_only=local)
    except OSError as exc:
        if local:
            raise
        raise WeightsUnavailableError(_offline_help(name, type(exc).__name__)) from exc
    if not (hasattr(net, "get_image_features") and hasattr(net, "get_text_features")):
        raise ValueError(f"{name}: a {type(net).__name__} is not an image-text model")
    return ImageTextModel(name, net.eval(), processor)


__all__ = ["ImageTextModel", "image_text_model"]
