"""Model bundles: save, load offline, predict."""

from headstart.bundle._bundle import Predictor, load, load_bundle, write_bundle, write_bundle_into

__all__ = ["Predictor", "load", "load_bundle", "write_bundle", "write_bundle_into"]
