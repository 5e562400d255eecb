"""The vital-sign catalog: what each indicator is, how it is measured and when it warns.

The catalog is data (YAML) so a deployment can extend or override it without code: later files
replace earlier entries with the same key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.settings import ConfigError, Names, parse_duration

CATALOG_FILE = Path(__file__).resolve().parent / "catalog.yaml"

DOMAINS = (
    "traffic",
    "environment",
    "water",
    "energy",
    "safety",
    "city_management",
    "emergency",
    "health",
    "economy",
    "government",
)
LEVEL_NAMES = ("blue", "yellow", "orange", "red")


class Thresholds(BaseModel):
    """Plain per-level thresholds: `above` warns at value >= limit, `below` at value <= limit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    direction: Literal["above", "below"] = "above"
    blue: float | None = None
    yellow: float | None = None
    orange: float | None = None
    red: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        limits = [(name, getattr(self, name)) for name in LEVEL_NAMES if getattr(self, name) is not None]
        if not limits:
            raise ValueError("at least one of blue, yellow, orange, red is needed")
        for (low_name, low), (high_name, high) in zip(limits, limits[1:], strict=False):
            wrong = high <= low if self.direction == "above" else high >= low
            if wrong:
                relation = "above" if self.direction == "above" else "below"
                raise ValueError(
                    f"level {high_name} ({high}) must be {relation} level {low_name} ({low}) "
                    f"for direction {self.direction!r}"
                )
        return self

    def limits(self) -> list[tuple[int, float]]:
        """(severity, limit) from the mildest level to the most severe."""
        return [
            (severity, getattr(self, name))
            for severity, name in enumerate(LEVEL_NAMES, start=1)
            if getattr(self, name) is not None
        ]

    def severity(self, value: float) -> int:
        """0 for normal, else 1 (IV blue) .. 4 (I red): the most severe level the value reaches."""
        reached = 0
        for severity, limit in self.limits():
            crossed = value >= limit if self.direction == "above" else value <= limit
            if crossed:
                reached = severity
        return reached


class Indicator(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=r"^[a-z][a-z0-9_]*\.[a-z0-9_.]+$")
    domain: Literal[DOMAINS]  # type: ignore[valid-type]
    name: Names
    unit: str = ""
    bounds: tuple[float, float]
    cadence: float
    level: Literal["city", "district", "station"]
    station_kinds: list[str] = Field(default_factory=list)
    aggregation: Literal["mean", "sum", "max", "min"] = "mean"
    higher_is_worse: bool = True
    decimals: int = Field(default=1, ge=0, le=4)
    department: Names
    classification: Literal["public", "internal", "restricted"] = "public"
    thresholds: Thresholds | None = None
    standard: str | None = None

    @field_validator("cadence", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float:
        return parse_duration(value)

    @model_validator(mode="after")
    def _consistent(self) -> Indicator:
        low, high = self.bounds
        if low >= high:
            raise ValueError(f"bounds [{low}, {high}]: the lower bound must be below the upper")
        if self.level == "station" and not self.station_kinds:
            raise ValueError("a station-level indicator names the station_kinds that report it")
        if self.thresholds:
            for severity, limit in self.thresholds.limits():
                if not low <= limit <= high:
                    name = LEVEL_NAMES[severity - 1]
                    raise ValueError(f"threshold {name} ({limit}) lies outside bounds [{low}, {high}]")
        return self

    def in_bounds(self, value: float) -> bool:
        return self.bounds[0] <= value <= self.bounds[1]


class Catalog:
    """The effective catalog: indicators by key, in file order."""

    def __init__(self, indicators: list[Indicator]):
        self._by_key = {indicator.key: indicator for indicator in indicators}

    def __getitem__(self, key: str) -> Indicator:
        return self._by_key[key]

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def __iter__(self):
        return iter(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)

    def get(self, key: str) -> Indicator | None:
        return self._by_key.get(key)

    def keys(self) -> list[str]:
        return list(self._by_key)


def _read_entries(path: Path) -> list[dict]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise ConfigError(path, [f"{where}not valid YAML"]) from exc
    entries = raw.get("indicators") if isinstance(raw, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(path, ["expected a top-level key 'indicators' holding a list"])
    return entries


def _entry_name(entry: object, index: int) -> str:
    key = entry.get("key") if isinstance(entry, dict) else None
    return f"indicators.{index} ({key})" if key else f"indicators.{index}"


def load_catalog(extra_files: list[Path] | tuple[Path, ...] = ()) -> Catalog:
    """The built-in catalog overridden by a deployment's files; every bad entry is reported."""
    merged: dict[str, Indicator] = {}
    for path in (CATALOG_FILE, *extra_files):
        problems: list[str] = []
        for index, entry in enumerate(_read_entries(path)):
            try:
                indicator = Indicator.model_validate(entry)
            except ValidationError as exc:
                for error in exc.errors():
                    field = ".".join(str(part) for part in error["loc"])
                    where = _entry_name(entry, index) + (f".{field}" if field else "")
                    message = error["msg"].removeprefix("Value error, ")
                    problems.append(f"{where}: {message}")
                continue
            merged[indicator.key] = indicator
        if problems:
            raise ConfigError(path, problems)
    return Catalog(list(merged.values()))
