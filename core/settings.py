"""Deployment settings: one YAML file validated by pydantic, a few environment overrides.

A city's IT team edits one file; a typo must stop the start with a message that names the key
path, the value and what was expected, never start half-configured.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from notify.settings import NotificationSettings

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "config" / "demo.yaml"
LANGUAGES = ("zh-CN", "en")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, None: 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> float:
    """Seconds from `90`, `"90s"`, `"5m"`, `"2h"`, `"7d"`: config files read better with units."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m, 2h or 7d")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError("expected a duration such as 30s, 5m, 2h or 7d")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError("expected a positive duration")
    return seconds


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Names(_Strict):
    """A name in both UI languages."""

    zh: str = Field(alias="zh-CN", min_length=1)
    en: str = Field(min_length=1)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def get(self, lang: str) -> str:
        return self.zh if lang == "zh-CN" else self.en


def known_zone(value: str) -> str:
    """An IANA zone name the system knows (checked when the config loads, not at first use)."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {value!r}") from None
    return value


ZoneName = Annotated[str, AfterValidator(known_zone)]


class CitySettings(_Strict):
    name: Names
    adcode: str = Field(pattern=r"^\d{6}$")
    timezone: ZoneName = "Asia/Shanghai"
    boundaries: Path
    stations: Path


class DatabaseSettings(_Strict):
    url: str = "sqlite:///var/citybrain.db"


class CacheSettings(_Strict):
    type: Literal["simple", "redis", "null"] = "simple"
    url: str | None = None
    timeout: float = 300

    @model_validator(mode="after")
    def _redis_needs_url(self) -> CacheSettings:
        if self.type == "redis" and not self.url:
            raise ValueError("cache type 'redis' needs a url such as redis://127.0.0.1:6379/0")
        return self


class ServerSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8050, ge=1, le=65535)
    secret_key: str = Field(default="", description="from CITYBRAIN_SECRET_KEY in production")
    debug: bool = False


ROLES = ("viewer", "officer", "admin")
Role = Literal["viewer", "officer", "admin"]
Classification = Literal["public", "internal", "restricted"]


class DemoUser(_Strict):
    username: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    password: str = Field(min_length=8)
    role: Role


class AuthSettings(_Strict):
    """Who may see and do what. A production config keeps `anonymous` off: every page needs sign-in."""

    anonymous: bool = Field(default=False, description="visitors not signed in may view public indicators")
    clearance: dict[Classification, list[str]] = Field(
        default_factory=lambda: {
            "public": ["anonymous", "display", *ROLES],
            "internal": ["display", *ROLES],
            "restricted": ["officer", "admin"],
        },
        description="data classification -> the roles (and 'anonymous', 'display') that may see it",
    )
    session_hours: float = Field(default=12, gt=0)
    secure_cookie: bool = Field(default=False, description="behind HTTPS: never send the cookie in clear")
    throttle_after: int = Field(default=3, ge=1, description="failed sign-ins before each attempt is slowed")
    demo_users: list[DemoUser] = Field(
        default_factory=list, description="demo only: created on start and printed on the console"
    )

    @field_validator("clearance")
    @classmethod
    def _known_roles(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        known = {"anonymous", "display", *ROLES}
        for level, roles in value.items():
            unknown = sorted(set(roles) - known)
            if unknown:
                raise ValueError(f"{level}: unknown roles {unknown} (known: {sorted(known)})")
        return value


class DeskSettings(_Strict):
    """Overrides of store.desk.OVERDUE_AFTER: how long an open alert of a level may wait (考核)."""

    overdue_after: dict[Literal["blue", "yellow", "orange", "red"], float] = Field(default_factory=dict)

    @field_validator("overdue_after", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> dict:
        return {key: parse_duration(duration) for key, duration in (value or {}).items()}


class SchedulerSettings(_Strict):
    mode: Literal["inprocess", "external"] = "inprocess"
    backfill: float = Field(default=7 * 86400, description="history fetched on a source's first run")
    run_timeout: float = 60
    heartbeat: float = 15
    workers: int = Field(default=8, ge=1, le=64)

    @field_validator("backfill", "run_timeout", "heartbeat", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)


class MapSettings(_Strict):
    tile_url: str | None = Field(default=None, description="an intranet tile server, if any")
    tile_attribution: str = ""
    heatmap: str = Field(default="hotline.calls_12345", description="the indicator /map spreads as heat")
    heatmap_bandwidth_km: float = Field(default=4, gt=0, le=50, description="the heat kernel's spread")
    cluster_above: int = Field(default=200, ge=1, description="a domain's stations cluster above this many")


SCREEN_PAGES = ("alerts", "sources")
WALL_KPIS = 16  # cards the wall's left column holds at 1920x1080 without scrolling
DEFAULT_WEATHER = ("weather.temperature", "weather.rainfall", "weather.wind_speed", "weather.visibility")


class PlaylistStep(_Strict):
    """One step of the wall's rotation: the map shows `indicator`, or the centre shows `page`."""

    indicator: str | None = None
    page: Literal[SCREEN_PAGES] | None = None  # type: ignore[valid-type]
    seconds: float = Field(default=60, description="how long the step stays (a duration: 60, 90s, 2m)")

    @field_validator("seconds", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        seconds = parse_duration(value)
        if seconds < 5:
            raise ValueError("a step shows for at least 5 s (a wall screen that flickers is unreadable)")
        return seconds

    @model_validator(mode="after")
    def _one_thing(self) -> PlaylistStep:
        if (self.indicator is None) == (self.page is None):
            raise ValueError(f"a step names either an indicator or a page ({', '.join(SCREEN_PAGES)})")
        return self


class ScreenSettings(_Strict):
    refresh: float = 10
    kpis: list[str] = Field(min_length=1, max_length=WALL_KPIS)
    choropleth: str = Field(description="the map's indicator when no playlist step names one")
    stations_indicator: dict[str, str] = Field(
        default_factory=dict, description="station kind -> the indicator that colours its marker"
    )
    playlist: list[PlaylistStep] = Field(
        default_factory=list, description="steps the wall rotates through: map indicators and pages"
    )
    weather: list[str] = Field(default_factory=lambda: list(DEFAULT_WEATHER), max_length=6)
    sparklines: list[str] | None = Field(
        default=None, max_length=8, description="24 h sparklines along the bottom (default: the first 8 KPIs)"
    )

    @field_validator("refresh", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)

    def steps(self) -> list[PlaylistStep]:
        """The rotation; without a playlist the map holds `choropleth` for good."""
        return list(self.playlist) or [PlaylistStep(indicator=self.choropleth)]

    def map_indicators(self) -> list[str]:
        """The indicators the map rotates through, in order, each once."""
        named = [step.indicator for step in self.playlist if step.indicator is not None]
        return list(dict.fromkeys(named)) or [self.choropleth]

    def sparkline_keys(self) -> list[str]:
        return list(self.sparklines if self.sparklines is not None else self.kpis[:8])

    def indicator_fields(self) -> list[tuple[str, str]]:
        """(key path, indicator key) of every indicator this section names, for `check-config`."""
        fields = [(f"screen.kpis.{i}", key) for i, key in enumerate(self.kpis)]
        fields.append(("screen.choropleth", self.choropleth))
        fields += [
            (f"screen.stations_indicator.{kind}", key) for kind, key in self.stations_indicator.items()
        ]
        fields += [
            (f"screen.playlist.{i}.indicator", step.indicator)
            for i, step in enumerate(self.playlist)
            if step.indicator is not None
        ]
        fields += [(f"screen.weather.{i}", key) for i, key in enumerate(self.weather)]
        fields += [(f"screen.sparklines.{i}", key) for i, key in enumerate(self.sparklines or [])]
        return fields

    def unknown_indicators(self, known: Collection[str]) -> list[str]:
        """One problem per indicator key the catalog does not hold, named by its key path."""
        return [
            f"{where}: unknown indicator {key!r}"
            for where, key in self.indicator_fields()
            if key not in known
        ]


class SourceSettings(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    type: str = Field(min_length=1)
    every: float = 60
    enabled: bool = True
    backfill: float | None = Field(default=None, description="overrides scheduler.backfill for this source")
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("every", "backfill", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float | None:
        return None if value is None else parse_duration(value)


class Settings(_Strict):
    city: CitySettings
    default_language: Literal["zh-CN", "en"] = "zh-CN"
    database: DatabaseSettings = DatabaseSettings()
    cache: CacheSettings = CacheSettings()
    server: ServerSettings = ServerSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    map: MapSettings = MapSettings()
    auth: AuthSettings = AuthSettings()
    desk: DeskSettings = DeskSettings()
    notifications: NotificationSettings = NotificationSettings()
    screen: ScreenSettings
    indicator_catalogs: list[Path] = Field(default_factory=list)
    composite_weights: dict[str, float] = Field(
        default_factory=dict, description="domain -> weight in the City Operations Index (default 1)"
    )
    sources: list[SourceSettings] = Field(default_factory=list)

    @field_validator("composite_weights")
    @classmethod
    def _weights(cls, value: dict[str, float]) -> dict[str, float]:
        for domain, weight in value.items():
            if weight < 0:
                raise ValueError(f"weight of {domain!r} must not be negative (got {weight})")
        return value

    @model_validator(mode="after")
    def _unique_sources(self) -> Settings:
        seen: set[str] = set()
        for source in self.sources:
            if source.id in seen:
                raise ValueError(f"source id {source.id!r} is used twice")
            seen.add(source.id)
        return self

    @model_validator(mode="after")
    def _signed_sessions_need_a_secret(self) -> Settings:
        if not self.auth.anonymous and not self.server.secret_key:
            raise ValueError(
                "server.secret_key: required when sign-in is required (auth.anonymous is false); "
                "set CITYBRAIN_SECRET_KEY so every worker signs sessions with the same key"
            )
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.city.timezone)


class ConfigError(Exception):
    """An unusable deployment file; `problems` holds one readable line per problem."""

    def __init__(self, path: Path, problems: list[str]):
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))

    def report(self) -> str:
        lines = [f"{self.path}: {len(self.problems)} problem(s)"]
        lines += [f"  - {problem}" for problem in self.problems]
        return "\n".join(lines)


_ENV_OVERRIDES = {
    "CITYBRAIN_DATABASE_URL": ("database", "url"),
    "CITYBRAIN_CACHE_URL": ("cache", "url"),
    "CITYBRAIN_SECRET_KEY": ("server", "secret_key"),
    "PORT": ("server", "port"),
}


def _apply_env(raw: dict[str, Any], environ: dict[str, str]) -> dict[str, Any]:
    for var, (section, key) in _ENV_OVERRIDES.items():
        if environ.get(var):
            raw.setdefault(section, {})
            if not isinstance(raw[section], dict):
                continue
            raw[section][key] = environ[var]
            if var == "CITYBRAIN_CACHE_URL":
                raw[section]["type"] = "redis"
    return raw


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "(top level)"
    message = error["msg"].removeprefix("Value error, ")
    if not error["loc"]:
        return message
    if error["type"] in ("missing",):
        return f"{where}: missing (required)"
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown key (value {error['input']!r}); check the spelling"
    return f"{where}: {message} (got {error['input']!r})"


def _resolve_paths(settings: Settings, base: Path) -> Settings:
    """Relative paths in a config file are relative to the repository, where the demo files live."""

    def resolve(path: Path) -> Path:
        return path if path.is_absolute() else (base / path)

    city = settings.city.model_copy(
        update={
            "boundaries": resolve(settings.city.boundaries),
            "stations": resolve(settings.city.stations),
        }
    )
    catalogs = [resolve(p) for p in settings.indicator_catalogs]
    return settings.model_copy(update={"city": city, "indicator_catalogs": catalogs})


def _missing_files(settings: Settings) -> list[str]:
    problems = []
    for where, path in (
        ("city.boundaries", settings.city.boundaries),
        ("city.stations", settings.city.stations),
    ):
        if not path.is_file():
            problems.append(f"{where}: file not found (got {str(path)!r})")
    for index, path in enumerate(settings.indicator_catalogs):
        if not path.is_file():
            problems.append(f"indicator_catalogs.{index}: file not found (got {str(path)!r})")
    return problems


def load_settings(path: Path | str | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Read, override from the environment, validate; raise ConfigError listing every problem."""
    environ = dict(os.environ if environ is None else environ)
    path = Path(path or environ.get("CITYBRAIN_CONFIG") or DEFAULT_CONFIG)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, [f"cannot read the file: {exc.strerror}"]) from exc
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(path, [f"{where}not valid YAML ({getattr(exc, 'problem', exc)})"]) from exc
    if not isinstance(raw, dict):
        raise ConfigError(path, ["the file must be a mapping of settings"])
    try:
        settings = Settings.model_validate(_apply_env(raw, environ))
    except ValidationError as exc:
        raise ConfigError(path, [_describe(e) for e in exc.errors()]) from exc
    settings = _resolve_paths(settings, REPO_ROOT)
    problems = _missing_files(settings)
    if problems:
        raise ConfigError(path, problems)
    return settings
