"""Adapters are found through the entry-point group `citybrain.datasources`.

Built-ins are registered exactly like a city's own adapters (in pyproject.toml), so a city's IT
team adds one by installing a package, without forking.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import Any

from pydantic import ValidationError

from datasources.base import Adapter, AdapterContext

GROUP = "citybrain.datasources"


@cache
def available() -> dict[str, Any]:
    """Adapter type name -> entry point (not loaded until used)."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def adapter_class(type_name: str) -> type[Adapter]:
    try:
        entry = available()[type_name]
    except KeyError:
        known = ", ".join(sorted(available())) or "none installed"
        raise LookupError(f"unknown source type {type_name!r} (known: {known})") from None
    return entry.load()


def option_problems(type_name: str, options: dict[str, Any], where: str) -> list[str]:
    """Readable problems with a source's type and options, each naming its key path."""
    try:
        cls = adapter_class(type_name)
    except LookupError as exc:
        return [f"{where}.type: {exc}"]
    try:
        cls.Options.model_validate(options)
    except ValidationError as exc:
        return [
            f"{where}.options.{'.'.join(str(p) for p in e['loc'])}: "
            f"{e['msg'].removeprefix('Value error, ')} (got {e.get('input')!r})"
            for e in exc.errors()
        ]
    return []


def build(type_name: str, options: dict[str, Any], context: AdapterContext) -> Adapter:
    cls = adapter_class(type_name)
    return cls(cls.Options.model_validate(options), context)
