"""Small field helpers every adapter needs: secrets from the environment, codes, unreadable times.

Kept apart from any one adapter so adapters never import each other.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.envvars import expand_env, missing_variables

__all__ = ["expand_env", "map_code", "missing_variables", "time_text"]

def map_code(value: object, mapping: Mapping[str, str]) -> str | None:
    """A code as text (an integer code column still names "320213"), mapped to the city's."""
    if value is None:
        return None
    code = str(value).strip()
    return mapping.get(code, code)


def time_text(value: object) -> object:
    """Text of a time cell that is no time: validation rejects it with its own reason."""
    return value if value is None or isinstance(value, str) else str(value)
