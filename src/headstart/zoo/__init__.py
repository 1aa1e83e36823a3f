"""The model zoo: one registry of pre-trained backbones and the factory that builds them."""

from headstart.zoo import _entries, _testing  # noqa: F401 - registers the built-in entries
from headstart.zoo._audio import AudioBackbone, SpeechEmbeddingBackbone
from headstart.zoo._backbone import Backbone
from headstart.zoo._entries import DEFAULT_MODELS
from headstart.zoo._image import ImageBackbone
from headstart.zoo._registry import (
    UnknownModelError,
    WeightsUnavailableError,
    create_backbone,
    get_spec,
    list_specs,
    register,
    register_builder,
)
from headstart.zoo._spec import (
    AudioPreprocess,
    BackboneSpec,
    ImagePreprocess,
    TextPreprocess,
    WeightsSource,
)
from headstart.zoo._text import TransformerTextBackbone, WordVectorBackbone

__all__ = [
    "DEFAULT_MODELS",
    "AudioBackbone",
    "AudioPreprocess",
    "Backbone",
    "BackboneSpec",
    "ImageBackbone",
    "ImagePreprocess",
    "SpeechEmbeddingBackbone",
    "TextPreprocess",
    "TransformerTextBackbone",
    "UnknownModelError",
    "WeightsSource",
    "WeightsUnavailableError",
    "WordVectorBackbone",
    "create_backbone",
    "get_spec",
    "list_specs",
    "register",
    "register_builder",
]
