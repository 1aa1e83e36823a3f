"""A small, untrained CNN in the zoo: an architecture to develop a source model on.

``small_cnn.untrained`` is the ``small_cnn`` baseline's network (four blocks of two 3x3
convolutions with BatchNorm and ReLU, 32 to 128 channels, about 0.46 M parameters, 32 px)
registered as a zoo architecture so that ``headstart pretrain SOURCE --arch small_cnn``
trains it on a CPU in minutes and registers the result as ``local/<name>``. Its own
weights are random (it is never a transfer candidate: ``rank`` skips untrained entries);
a ``"file"`` weights source (a ``local/`` entry) loads strictly.
"""

from __future__ import annotations

from torch import nn

from headstart.zoo._image import ImageBackbone
from headstart.zoo._spec import BackboneSpec, ImagePreprocess, WeightsSource
from headstart.zoo._weights import read_state_dict

BLOCKS = ("block1", "block2", "block3", "block4")
WIDTHS = ((3, 32, 1), (32, 64, 2), (64, 96, 2), (96, 128, 2))  # in, out, stride

SMALL_CNN_UNTRAINED = BackboneSpec(
    name="small_cnn.untrained",
    modality="image",
    arch="small_cnn",
    builder="small-cnn",
    weights=WeightsSource("random", "untrained: develop it with `headstart pretrain`"),
    preprocess=ImagePreprocess(input_size=32, crop_pct=1.0, mean=(0.5,) * 3, std=(0.5,) * 3),
    feature_dim=128,
    blocks=BLOCKS,
    licence="Apache-2.0",
    description="small CNN (4 conv blocks, 0.46M, 32 px), untrained: for `headstart pretrain`",
    params_m=0.46,
    extra={"untrained": True},
)


def small_cnn_stages() -> list[tuple[str, nn.Module]]:
    """The four named blocks, randomly initialised from the global torch RNG."""

    def block(cin: int, cout: int, stride: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )

    return [(name, block(*w)) for name, w in zip(BLOCKS, WIDTHS, strict=True)]


def build_small_cnn(spec: BackboneSpec, pretrained: bool = True) -> ImageBackbone:
    """The network; with ``pretrained`` and a ``"file"`` source, that file's weights
    (saved from an :class:`ImageBackbone`: ``stages.<i>...`` keys), loaded strictly."""
    backbone = ImageBackbone(spec, small_cnn_stages())
    if pretrained and spec.weights.kind == "file":
        state = read_state_dict(spec.weights.locator)
        try:
            backbone.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ValueError(
                f"{spec.weights.locator}: weights do not fit {spec.arch} "
                f"({str(exc).splitlines()[0][:200]})"
            ) from None
    return backbone.eval()


def untrained(spec: BackboneSpec) -> bool:
    """Whether ``spec`` is an architecture without trained weights of its own."""
    return bool(spec.extra.get("untrained")) and spec.weights.kind == "random"


__all__ = ["SMALL_CNN_UNTRAINED", "build_small_cnn", "small_cnn_stages", "untrained"]
