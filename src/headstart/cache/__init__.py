"""Content-addressed feature store."""

from headstart.cache._store import (
    CacheWarning,
    FeatureStore,
    default_cache_dir,
    extract,
    fingerprint,
    state_digest,
)

__all__ = [
    "CacheWarning",
    "FeatureStore",
    "default_cache_dir",
    "extract",
    "fingerprint",
    "state_digest",
]
