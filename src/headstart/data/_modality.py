"""The modality registry: what the rest of headstart needs to know about a kind of input.

A :class:`Modality` says whether its items are files (and with which extensions), how an
item is checked and keyed by content (the feature cache and duplicate removal use the
key), how it is loaded for a backbone's ``collate``, and how its input size is described.
Image, text and audio register here; a new modality registers itself the same way, and
code asks the registry instead of comparing modality names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from headstart.data._audio import AUDIO_EXTENSIONS, check_audio, read_audio
from headstart.data._clean import text_content_key
from headstart.data._items import IMAGE_EXTENSIONS, check_image, load_image, text_key


@dataclass(frozen=True)
class Modality:
    """``files``: items are paths to files with one of ``extensions``; ``key(item)``: the
    content key of a readable item (raises on an unreadable one, whose reason starts with
    ``unreadable``); ``group_key(item, key)``: what makes two items duplicates;
    ``load(item)``: what the backbone collates; ``describe_input(preprocess)``: the input
    size in words; ``noun``: what the items are, for messages."""

    name: str
    files: bool
    extensions: frozenset[str]
    key: Callable[[Any], str]
    group_key: Callable[[Any, str], str]
    load: Callable[[Any], Any]
    describe_input: Callable[[Any], str]
    noun: str
    unreadable: str = "unreadable"


_MODALITIES: dict[str, Modality] = {}


def register_modality(modality: Modality) -> Modality:
    if modality.name in _MODALITIES:
        raise ValueError(f"modality {modality.name!r} is already registered")
    _MODALITIES[modality.name] = modality
    return modality


def get_modality(name: str) -> Modality:
    try:
        return _MODALITIES[name]
    except KeyError:
        raise ValueError(f"unknown modality {name!r}; known: {', '.join(_MODALITIES)}") from None


def list_modalities() -> list[Modality]:
    return list(_MODALITIES.values())


def modality_of_file(path: str | Path) -> Modality | None:
    """The file modality whose extensions include ``path``'s, if any."""
    suffix = Path(path).suffix.lower()
    return next((m for m in _MODALITIES.values() if m.files and suffix in m.extensions), None)


IMAGE = register_modality(
    Modality(
        name="image",
        files=True,
        extensions=frozenset(IMAGE_EXTENSIONS),
        key=lambda item: check_image(Path(item)),
        group_key=lambda item, key: key,  # the same bytes
        load=lambda item: load_image(item) if isinstance(item, str | Path) else item,
        describe_input=lambda pre: f"{pre.input_size}px",
        noun="image paths",
        unreadable="unreadable image",
    )
)
TEXT = register_modality(
    Modality(
        name="text",
        files=False,
        extensions=frozenset(),
        key=text_key,
        group_key=lambda item, key: text_content_key(item),  # the same words
        load=lambda item: item,
        describe_input=lambda pre: f"{pre.max_length} tokens",
        noun="texts",
    )
)
AUDIO = register_modality(
    Modality(
        name="audio",
        files=True,
        extensions=AUDIO_EXTENSIONS,
        key=lambda item: check_audio(Path(item)),
        group_key=lambda item, key: key,  # the same bytes
        load=lambda item: read_audio(item) if isinstance(item, str | Path) else item,
        describe_input=lambda pre: f"{pre.clip_seconds:g} s at {pre.sample_rate} Hz",
        noun="audio paths",
        unreadable="unreadable audio",
    )
)

__all__ = [
    "AUDIO",
    "IMAGE",
    "TEXT",
    "Modality",
    "get_modality",
    "list_modalities",
    "modality_of_file",
    "register_modality",
]
