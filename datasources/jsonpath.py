"""A small JSONPath subset, enough to point into a department's JSON answer.

Supported: `$` (the document), `.key` and `['key']` (a member; the bracket form for keys with dots,
spaces or brackets), `[0]` and `[-1]` (a list item), `[*]` and `.*` (every item or member value).
Filters and recursive descent are refused when the path is parsed, so a mapping that needs them
fails at configuration time instead of silently matching nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

SUPPORTED = "$, .key, ['key'], [0], [-1], [*], .*"


class JsonPathError(ValueError):
    """A path that is malformed or uses syntax this subset does not support."""


class _Wildcard:
    def __repr__(self) -> str:
        return "*"


WILDCARD = _Wildcard()
Step = str | int | _Wildcard

_STEP = re.compile(
    r"""
      \.\.(?P<descent>)
    | \.\*(?P<dotstar>)
    | \.(?P<name>[^.\[\]\s]+)
    | \[\s*(?:
          (?P<star>\*)
        | (?P<index>-?\d+)
        | '(?P<single>(?:[^'\\]|\\.)*)'
        | "(?P<double>(?:[^"\\]|\\.)*)"
      )\s*\]
    """,
    re.VERBOSE,
)
_ESCAPE = re.compile(r"\\(.)")


@dataclass(frozen=True)
class JsonPath:
    """A parsed path; `find` returns every match, in document order."""

    text: str
    steps: tuple[Step, ...]

    @classmethod
    def parse(cls, text: str) -> JsonPath:
        if not isinstance(text, str) or not text.startswith("$"):
            raise JsonPathError(f"a JSON path starts with $ (got {text!r}; supported: {SUPPORTED})")
        steps: list[Step] = []
        position = 1
        while position < len(text):
            match = _STEP.match(text, position)
            if match is None or match.group("descent") is not None:
                what = "recursive descent (..) is not supported" if match else "unexpected text"
                raise JsonPathError(
                    f"JSON path {text!r} at position {position}: {what} (supported: {SUPPORTED})"
                )
            steps.append(_step(match))
            position = match.end()
        return cls(text, tuple(steps))

    def find(self, document: Any) -> list[Any]:
        nodes = [document]
        for step in self.steps:
            nodes = [child for node in nodes for child in _children(node, step)]
        return nodes

    @property
    def ends_in_wildcard(self) -> bool:
        return bool(self.steps) and self.steps[-1] is WILDCARD

    def parent(self) -> JsonPath:
        """The path without its last step (the container a trailing wildcard iterates)."""
        return JsonPath(f"{self.text} (container)", self.steps[:-1])

    def __str__(self) -> str:
        return self.text


def _step(match: re.Match[str]) -> Step:
    if match.group("dotstar") is not None or match.group("star") is not None:
        return WILDCARD
    if match.group("index") is not None:
        return int(match.group("index"))
    if match.group("name") is not None:
        return match.group("name")
    quoted = match.group("single") if match.group("single") is not None else match.group("double")
    return _ESCAPE.sub(r"\1", quoted)


def _children(node: Any, step: Step) -> list[Any]:
    if step is WILDCARD:
        if isinstance(node, dict):
            return list(node.values())
        return list(node) if isinstance(node, list) else []
    if isinstance(step, int):
        if isinstance(node, list) and -len(node) <= step < len(node):
            return [node[step]]
        return []
    if isinstance(node, dict) and step in node:
        return [node[step]]
    return []
