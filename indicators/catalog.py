"""The vital-sign catalog: what each indicator is, how it is measured and when it warns.

The catalog is data (YAML) so a deployment can extend or override it without code: later files
replace earlier entries with the same key.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import yaml
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.settings import ConfigError, Names, parse_duration

CATALOG_FILES = (
    Path(__file__).resolve().parent / "catalog.yaml",
    Path(__file__).resolve().parent / "composite.yaml",
)

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
    "composite",
)
LEVEL_NAMES = ("blue", "yellow", "orange", "red")


LevelName = Literal["blue", "yellow", "orange", "red"]


def severity_of(name: str) -> int:
    """1 (IV blue) .. 4 (I red)."""
    return LEVEL_NAMES.index(name) + 1


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Thresholds(_Rule):
    """Per-level limits with hysteresis and a minimum duration.

    `above` enters a level at value >= limit, `below` at value <= limit. A level is left only past
    its clear value (explicit `clear`, else limit -/+ `hysteresis`), so a value wobbling on the line
    does not flap. A level is entered only when its condition has held for `for` (a duration) or
    for `readings` consecutive readings.
    """

    direction: Literal["above", "below"] = "above"
    blue: float | None = None
    yellow: float | None = None
    orange: float | None = None
    red: float | None = None
    hysteresis: float = Field(default=0, ge=0)
    clear: dict[LevelName, float] = Field(default_factory=dict)
    hold: float = Field(default=0, alias="for", ge=0)
    readings: int = Field(default=1, ge=1)

    @field_validator("hold", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float:
        return 0 if value in (0, "0", None) else parse_duration(value)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        limits = [(name, getattr(self, name)) for name in LEVEL_NAMES if getattr(self, name) is not None]
        if not limits:
            raise ValueError("at least one of blue, yellow, orange, red is needed")
        above = self.direction == "above"
        for (low_name, low), (high_name, high) in zip(limits, limits[1:], strict=False):
            if (high <= low) if above else (high >= low):
                relation = "above" if above else "below"
                raise ValueError(
                    f"level {high_name} ({high}) must be {relation} level {low_name} ({low}) "
                    f"for direction {self.direction!r}"
                )
        for name, value in self.clear.items():
            limit = getattr(self, name)
            if limit is None:
                raise ValueError(f"clear value for level {name}, which has no limit")
            if (value > limit) if above else (value < limit):
                side = "at or below" if above else "at or above"
                raise ValueError(
                    f"clear value of level {name} ({value}) must be {side} its limit ({limit}) "
                    f"for direction {self.direction!r}"
                )
        return self

    @cached_property
    def _limits(self) -> tuple[tuple[int, float], ...]:
        return tuple(
            (severity, getattr(self, name))
            for severity, name in enumerate(LEVEL_NAMES, start=1)
            if getattr(self, name) is not None
        )

    def limits(self) -> tuple[tuple[int, float], ...]:
        """(severity, limit) from the mildest level to the most severe (computed once: hot path)."""
        return self._limits

    def limit(self, severity: int) -> float | None:
        return getattr(self, LEVEL_NAMES[severity - 1])

    def clear_value(self, severity: int) -> float:
        """The value the series must pass to leave level `severity`."""
        name = LEVEL_NAMES[severity - 1]
        if name in self.clear:
            return self.clear[name]
        limit = getattr(self, name)
        return limit - self.hysteresis if self.direction == "above" else limit + self.hysteresis

    def reaches(self, value: float | NDArray[np.float64], limit: float) -> bool | NDArray[np.bool_]:
        """Whether the value (or each of an array of them, for the batch evaluation) reaches `limit`."""
        return value >= limit if self.direction == "above" else value <= limit

    def severity(self, value: float) -> int:
        """0 for normal, else 1 (IV blue) .. 4 (I red): the most severe level the value reaches."""
        reached = 0
        for severity, limit in self.limits():
            if self.reaches(value, limit):
                reached = severity
        return reached


class RateRule(_Rule):
    """A change of `change` (negative for a fall) within `within` warns at `level`."""

    type: Literal["rate"]
    change: float
    within: float
    level: LevelName = "blue"

    @field_validator("within", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float:
        return parse_duration(value)

    @model_validator(mode="after")
    def _nonzero(self) -> RateRule:
        if self.change == 0:
            raise ValueError("change must not be 0")
        return self


class NoDataRule(_Rule):
    """Nothing for `after` x the expected cadence (数据中断), per entity."""

    type: Literal["nodata"]
    after: float = Field(default=3, gt=1)
    level: LevelName = "blue"


class ForecastRule(_Rule):
    """A robust (Theil-Sen) trend over `window` predicts crossing level `target` within `horizon`."""

    type: Literal["forecast"]
    target: LevelName = "yellow"
    horizon: float = 7200
    window: float = 3600
    min_points: int = Field(default=6, ge=3)
    level: LevelName = "blue"

    @field_validator("horizon", "window", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float:
        return parse_duration(value)


class AnomalyRule(_Rule):
    """For indicators with no fixed threshold: a robust z-score against the same hour of the same
    weekday over the past `weeks` weeks; |z| >= `z` warns at `level` (only upward when higher is
    worse, downward otherwise)."""

    type: Literal["anomaly"]
    weeks: int = Field(default=4, ge=2, le=12)
    z: float = Field(default=3.5, gt=0)
    min_weeks: int = Field(default=3, ge=2)
    tolerance: float = 1800
    level: LevelName = "blue"

    @field_validator("tolerance", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float:
        return parse_duration(value)

    @model_validator(mode="after")
    def _enough(self) -> AnomalyRule:
        if self.min_weeks > self.weeks:
            raise ValueError(f"min_weeks ({self.min_weeks}) exceeds weeks ({self.weeks})")
        return self


Rule = Annotated[RateRule | NoDataRule | ForecastRule | AnomalyRule, Field(discriminator="type")]


class Indicator(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=r"^[a-z][a-z0-9_]*\.[a-z0-9_.]+$")
    domain: Literal[DOMAINS]  # type: ignore[valid-type]
    name: Names
    unit: str = ""
    unit_zh: str | None = None  # the unit as Chinese pages write it (户, 次/小时); default: `unit`
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
    normal: float | None = Field(default=None, description="a fully normal value, for the composite index")
    rules: list[Rule] = Field(default_factory=list)
    standard: str | None = None

    def unit_in(self, lang: str) -> str:
        """The unit in the page's language: a symbol (µg/m³, km/h) is the same in both; a word
        (households, calls/h) has its Chinese form in `unit_zh`."""
        return self.unit_zh if lang == "zh-CN" and self.unit_zh is not None else self.unit

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
        kinds = [rule.type for rule in self.rules]
        for kind in set(kinds):
            if kinds.count(kind) > 1:
                raise ValueError(f"at most one {kind!r} rule per indicator")
        for rule in self.rules:
            if isinstance(rule, ForecastRule):
                if self.thresholds is None or self.thresholds.limit(severity_of(rule.target)) is None:
                    raise ValueError(f"forecast rule targets level {rule.target}, which has no threshold")
        return self

    def rule_keys(self) -> list[str]:
        """Every rule's key: `<indicator>:<type>`; the thresholds are the `threshold` rule."""
        keys = [f"{self.key}:threshold"] if self.thresholds else []
        return keys + [f"{self.key}:{rule.type}" for rule in self.rules]

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

    def cleared(self, classes: Collection[str]) -> list[Indicator]:
        """The indicators of these data classifications (a requester's clearance), in catalog order."""
        return [i for i in self._by_key.values() if i.classification in classes]

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
    for path in (*CATALOG_FILES, *extra_files):
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
