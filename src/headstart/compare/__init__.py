"""``headstart.compare``: every method on the same splits over seeds and shot counts, the
transfer gain with its interval, and the negative-transfer verdict."""

from headstart.compare._compare import (
    DEFAULT_STRATEGIES,
    CompareResult,
    compare,
    expand_strategies,
    parse_shots,
    resplit,
    summarise,
    take_shots,
    verdict,
)

__all__ = [
    "DEFAULT_STRATEGIES",
    "CompareResult",
    "compare",
    "expand_strategies",
    "parse_shots",
    "resplit",
    "summarise",
    "take_shots",
    "verdict",
]
