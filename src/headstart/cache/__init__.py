"""Content-addressed feature store."""

from headstart.cache._store import (
    FeatureStore,
    default_cache_dir,
    extract,
    fingerprint,
    state_digest,
)

__all__ = ["FeatureStore", "default_cache_dir", "extract", "fingerprint", "state_digest"]
