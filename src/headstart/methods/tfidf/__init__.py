"""``tfidf``: the classical text baseline, no pre-training."""

from headstart.methods._registry import register_method
from headstart.methods.tfidf.config import TfidfConfig
from headstart.methods.tfidf.method import DESCRIPTION, Tfidf

register_method(
    "tfidf", TfidfConfig, Tfidf, kind="baseline", summary=DESCRIPTION, modalities=("text",)
)
