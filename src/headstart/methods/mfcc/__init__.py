"""``mfcc``: the classical audio baseline, no pre-training."""

from headstart.methods._registry import register_method
from headstart.methods.mfcc.config import MfccConfig
from headstart.methods.mfcc.method import DESCRIPTION, Mfcc

register_method(
    "mfcc", MfccConfig, Mfcc, kind="baseline", summary=DESCRIPTION, modalities=("audio",)
)
