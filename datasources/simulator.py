"""A simulated but plausible city, so the operations centre has live data without any department.

Every value is a pure function of (seed, indicator, entity, bucket time): a counter-based hash
(splitmix64) replaces random-number state, so overlapping windows, a backfill and the live feed,
or two processes all produce the same reading for the same bucket. Realism comes from structure
layered on that hash: daily, weekly and yearly rhythms in the city's local time, slow "value noise"
(hashed knots, smoothly interpolated), weather (temperature, wind, fog and rainstorms that cross the
districts) driving waterlogging, rivers, water quality, traffic, power and calls, per-series
incidents that cross the catalog's warning levels, hotline surges (a burst main, a power cut, a
storm), portal failures, stations and district feeds that go silent for a while, and a small share
of malformed records like a real sensor sends.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, field_validator

from core.city import City, RegionInfo, StationInfo
from core.settings import parse_duration
from datasources import base
from datasources.base import AdapterContext, Batch, Record
from indicators.catalog import Catalog, Indicator

HOUR = 3600.0
DAY = 86400.0
YEAR = 365.2425 * DAY

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)

# Rainstorms: at most one may start in each 12-hour slot; their effects last up to three days.
STORM_SLOT = 12 * HOUR
STORM_CHANCE = 0.2
STORM_LOOKBACK = 3 * DAY
MIN_STORM_SPEED_KMH = 25.0
GUST_LEAD = 900.0  # a storm's gust front runs this far ahead of its rain
RIVER_GAIN = 0.009  # metres of river rise per millimetre of rain that fell on the catchment
RIVER_SLOW_DELAY = 14 * HOUR  # the basin's slow response peaks this long after the storm

# Incidents: at most one may start in each 3-hour slot of a series.
INCIDENT_SLOT = 3 * HOUR
INCIDENT_MIN, INCIDENT_MAX = 15 * 60.0, 90 * 60.0
LEVEL_ODDS = (0.55, 0.28, 0.13, 0.04)  # blue, yellow, orange, red

# Station outages: at most one per station per 6-hour slot, 20-120 minutes of silence. A district's
# whole feed (its district-level series) goes silent far more rarely.
OUTAGE_SLOT = 6 * HOUR
OUTAGE_MIN, OUTAGE_MAX = 20 * 60.0, 120 * 60.0
FEED_GAP_SLOT = 2 * DAY
FEED_GAP_SHARE = 0.15  # a district feed gap is this much rarer (per day) than a station outage
FEED_GAP_MIN, FEED_GAP_MAX = 20 * 60.0, 60 * 60.0

# Hotline surges: at most one unexplained surge per district per 2-day slot, 1-3 hours at 2-3x the
# usual calls; every storm that rains this hard on a district brings one too.
SURGE_SLOT = 2 * DAY
SURGE_MIN, SURGE_MAX = HOUR, 3 * HOUR
STORM_SURGE_RAIN = 30.0  # mm/h at the district's peak
SURGE_CAUSES = ("burst_main", "power_cut", "other")
SURGE_CAUSE_ODDS = (0.5, 0.3, 0.2)

# The government portal fails about once in ten days, for 30-90 minutes.
PORTAL_SLOT = DAY
PORTAL_CHANCE = 0.1

# Traffic busyness, population weight and scenic draw of the demo city's districts; other cities
# hash theirs.
_DISTRICT_PROFILES = {
    "梁溪": (1.0, 0.8, 0.7),
    "新吴": (0.97, 0.6, 0.35),
    "滨湖": (0.8, 0.6, 1.0),
    "锡山": (0.7, 0.55, 0.45),
    "惠山": (0.72, 0.55, 0.6),
    "江阴": (0.75, 1.0, 0.5),
    "宜兴": (0.62, 0.85, 0.85),
}


# --- counter-based randomness -------------------------------------------------------------------


def stable_key(*parts: object) -> int:
    """A 64-bit key from strings and numbers that never changes across processes (unlike hash())."""
    text = "\x1f".join(str(part) for part in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")


def _mix(z: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: a bijective avalanche on uint64 arrays (overflow wraps by design)."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def uniform(key: int, counter: np.ndarray) -> np.ndarray:
    """Uniform [0, 1) numbers, one per integer counter; the same (key, counter) gives the same one."""
    c = np.atleast_1d(np.asarray(counter, dtype=np.int64)).astype(np.uint64)
    z = _mix(c * _GOLDEN + np.uint64(key))
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)


def normal(key: int, counter: np.ndarray) -> np.ndarray:
    """Standard normal numbers by Box-Muller over two hashed uniform streams."""
    u1 = uniform(key, counter)
    u2 = uniform(key ^ 0x5DEECE66D, counter)
    return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * math.pi * u2)


def value_noise(key: int, t: np.ndarray, period: float) -> np.ndarray:
    """Smooth wander in [-1, 1]: hashed knots every `period` seconds, smoothstep-interpolated.

    Knots sit on absolute time, so any window of any length sees the same curve.
    """
    x = np.asarray(t, dtype=np.float64) / period
    knot = np.floor(x)
    frac = x - knot
    knot = knot.astype(np.int64)
    a, b = uniform(key, knot), uniform(key, knot + 1)
    s = frac * frac * (3.0 - 2.0 * frac)
    return (a + (b - a) * s).reshape(x.shape) * 2.0 - 1.0


def _scalars(key: int, index: int, count: int) -> list[float]:
    """`count` fixed uniforms for one object (a station's traits, a storm's parameters)."""
    return uniform(key, np.arange(count) + index * 64).tolist()


def slot_events(
    key: int, first: float, last: float, slot: float, chance: float, lead: float, draws: int
) -> np.ndarray:
    """Rare events decided slot by slot: rows of (start, `draws` uniforms) that can touch a window.

    At most one event starts in each `slot`, at a hashed moment; slots up to `lead` (the longest
    event) before `first` are included, so an event running into the window is found whatever
    the window, which keeps every value independent of how time is cut into fetches.
    """
    if chance <= 0:
        return np.empty((0, draws + 1))
    slots = np.arange(math.floor((first - lead) / slot), math.floor(last / slot) + 1)
    u = uniform(key, slots[:, None] * 8 + np.arange(draws + 2)).reshape(len(slots), draws + 2)
    hit = u[:, 0] < chance
    return np.column_stack([slots[hit] * slot + u[hit, 1] * slot, u[hit, 2:]])


def trapezoid(t: np.ndarray, start: float, duration: float, rise: float, fall: float) -> np.ndarray:
    """0 before `start`, up to 1 over `rise` seconds, held, back to 0 over the last `fall` seconds."""
    return np.clip(np.minimum((t - start) / rise, (start + duration - t) / fall), 0.0, 1.0)


# --- shapes of the day and the year -------------------------------------------------------------


def bump(hour: np.ndarray, centre: float, width: float) -> np.ndarray:
    """A Gaussian bump of the hour of day, wrapping round midnight."""
    d = (hour - centre + 12.0) % 24.0 - 12.0
    return np.exp(-((d / width) ** 2))


def active(hour: np.ndarray, start: float, end: float, sharpness: float = 2.0) -> np.ndarray:
    """About 1 between `start` and `end` o'clock, about 0 outside, with soft edges; it wraps round
    midnight (no step there, and `end` may pass 24 for a night that runs into the next day)."""
    total = np.zeros_like(hour, dtype=np.float64)
    for shift in (-24.0, 0.0, 24.0):
        h = hour + shift
        total = total + 1.0 / (1.0 + np.exp(-sharpness * (h - start))) / (
            1.0 + np.exp(-sharpness * (end - h))
        )
    return total


def by_weekday(w: Window, values: tuple[float, ...]) -> np.ndarray:
    """A per-weekday factor (Monday first) for demand that sleeps at night: the day turns at
    4:00, when next to nothing happens, so the factor never makes a visible step."""
    return np.asarray(values)[np.where(w.hour < 4.0, (w.weekday + 6) % 7, w.weekday)]


def flu_season(w: Window) -> np.ndarray:
    """0..1, peaking in late January, nearly nothing from May to October."""
    return ((1.0 + w.annual(20.0)) / 2.0) ** 4


# --- the simulated world ------------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """Where weather and traffic are decided: a district, or the whole city (code None)."""

    code: str | None
    x_km: float
    y_km: float
    busyness: float
    people: float
    scenic: float = 0.5


@dataclass(frozen=True)
class Series:
    """One simulated time series and the constants its records share (indicator None: a model
    evaluated for another series' sake, under a key the catalog does not have)."""

    indicator: Indicator | None
    entity: str
    place: Place
    station: StationInfo | None
    key: int
    raw_prefix: str
    model_key: str = ""

    @property
    def name(self) -> str:
        return self.indicator.key if self.indicator is not None else self.model_key


@dataclass
class Window:
    """The buckets of one fetch in UTC and local time, and drivers shared by the series."""

    ts: np.ndarray
    counter: np.ndarray
    hour: np.ndarray
    day: np.ndarray
    weekday: np.ndarray
    doy: np.ndarray
    storms: Storms
    cache: dict[tuple[Any, ...], Any] = field(default_factory=dict)

    @property
    def weekend(self) -> np.ndarray:
        return self.weekday >= 5

    def annual(self, peak_day: float) -> np.ndarray:
        """A yearly cosine: 1 on day-of-year `peak_day`, -1 half a year away."""
        return np.cos(2.0 * math.pi * (self.doy - peak_day) / 365.2425)


@dataclass(frozen=True)
class Storms:
    """The rainstorms that can matter to one window: start (s), duration (s), peak (mm/h)."""

    slot: np.ndarray
    start: np.ndarray
    duration: np.ndarray
    peak: np.ndarray
    heading: np.ndarray
    speed_kmh: np.ndarray
    key: int

    def at(self, place: Place) -> tuple[np.ndarray, np.ndarray]:
        """Per storm, when it reaches `place` (it moves across the city) and how hard it rains there."""
        along = place.x_km * np.cos(self.heading) + place.y_km * np.sin(self.heading)
        arrival = self.start + along / self.speed_kmh * HOUR
        share = 0.45 + 0.85 * uniform(stable_key(self.key, place.code), self.slot)
        return arrival, self.peak * share


def find_storms(seed: int, first: float, last: float) -> Storms:
    """Storms of the slots from `first` to `last` (epoch seconds), decided slot by slot.

    The caller pads the range so that every storm that can touch a bucket is found whatever the
    window, which keeps values independent of how the time range is cut into fetches.
    """
    key = stable_key(seed, "storm")
    slots = np.arange(math.floor(first / STORM_SLOT), math.floor(last / STORM_SLOT) + 1)
    u = uniform(key, slots[:, None] * 8 + np.arange(6)).reshape(len(slots), 6)
    hit = u[:, 0] < STORM_CHANCE
    u, slots = u[hit], slots[hit]
    return Storms(
        slot=slots,
        start=slots * STORM_SLOT + u[:, 1] * STORM_SLOT,
        duration=(1.5 + 4.0 * u[:, 2]) * HOUR,
        peak=5.0 + 55.0 * u[:, 3] ** 2.5,
        heading=(u[:, 4] - 0.5) * (2 * math.pi / 3),  # mostly west to east, as fronts move here
        speed_kmh=MIN_STORM_SPEED_KMH + 25.0 * u[:, 5],
        key=key,
    )


class World:
    """The models behind the series: weather, traffic, people and events, shared per fetch via caches."""

    def __init__(
        self,
        seed: int,
        city: City,
        catalog: Catalog | None = None,
        incident_rate: float = 0.0,
        surge_rate: float = 0.0,
    ):
        self.seed = seed
        self.catalog = catalog
        self.incident_rate = incident_rate
        self.surge_rate = surge_rate
        self.places = _places(seed, city)
        self.districts = [p for code, p in self.places.items() if code is not None] or [self.places[None]]
        farthest = max(math.hypot(p.x_km, p.y_km) for p in self.places.values())
        self.storm_lead = farthest / MIN_STORM_SPEED_KMH * HOUR + 1.0

    def storms_for(self, ts: np.ndarray) -> Storms:
        """Every storm that can reach any place within a bucket's rain or river memory."""
        return find_storms(
            self.seed, ts[0] - STORM_LOOKBACK - self.storm_lead, ts[-1] + self.storm_lead + GUST_LEAD
        )

    # --- readings ---

    def reading(self, w: Window, series: Series) -> np.ndarray:
        """The series' model plus its incidents, before rounding: what its sensor measures."""
        cache_key = ("reading", series.name, series.entity)
        if cache_key not in w.cache:
            spec = MODELS[series.name]
            values = spec.model(self, w, series)
            if series.indicator is not None:
                rate = self.incident_rate * spec.incident_weight
                values = apply_incidents(series, w, values, rate, spec.ramp, spec.max_severity)
            w.cache[cache_key] = values
        return w.cache[cache_key]

    def sibling(self, w: Window, series: Series, key: str) -> np.ndarray:
        """The reading of another indicator on the same entity (the AQI is made of its pollutants)."""
        indicator = self.catalog.get(key) if self.catalog is not None else None
        other = Series(
            indicator,
            series.entity,
            series.place,
            series.station,
            stable_key(self.seed, key, series.entity),
            "",
            key,
        )
        return self.reading(w, other)

    # --- weather ---

    def rain(self, w: Window, place: Place, t: np.ndarray) -> np.ndarray:
        """Rainfall (mm/h) at `place` at times `t`: each storm a sin² pulse, with gusty cells."""
        arrival, peak = w.storms.at(place)
        x = (t[..., None] - arrival) / w.storms.duration
        pulse = np.where((x > 0) & (x < 1), np.sin(np.pi * x) ** 2, 0.0)
        rain = (pulse * peak).sum(axis=-1)
        cells = 1.0 + 0.3 * value_noise(stable_key(self.seed, "cells", place.code), t, 1200.0)
        return rain * cells

    def recent_rain(self, w: Window, place: Place, tau_min: float) -> np.ndarray:
        """Rain of the last few `tau_min` minutes, weighted towards now: what drains and pools."""
        cache_key = ("recent_rain", place.code, tau_min)
        if cache_key not in w.cache:
            lags = np.arange(0.0, 4 * tau_min + 1, 5.0)
            weights = np.exp(-lags / tau_min)
            rain = self.rain(w, place, w.ts[:, None] - lags * 60.0)
            w.cache[cache_key] = rain @ (weights / weights.sum())
        return w.cache[cache_key]

    def storm_response(self, w: Window, place: Place, delay: float, power: float) -> np.ndarray:
        """Millimetres of recent storms as a catchment feels them: each storm's rain (60 % local,
        40 % the city's) through the kernel (x e^(1-x))^power of x = age / delay, which peaks at 1
        after `delay` and fades over a few delays.

        A pure function of time (a sum of per-storm responses), so any window sees the same value;
        the response is cut at STORM_LOOKBACK, where it has long faded, so every window sums the
        same storms.
        """
        cache_key = ("storm_response", place.code, delay, power)
        if cache_key not in w.cache:
            total = np.zeros_like(w.ts)
            for where, weight in ((place, 0.6), (self.places[None], 0.4)):
                arrival, peak = w.storms.at(where)
                volume = peak * w.storms.duration / HOUR * 0.5
                age = w.ts[:, None] - arrival
                x = np.where((age > 0) & (age < STORM_LOOKBACK), age / delay, 0.0)
                total += weight * (volume * (x * np.exp(1.0 - x)) ** power).sum(axis=-1)
            w.cache[cache_key] = total
        return w.cache[cache_key]

    def temperature(self, w: Window, place: Place) -> np.ndarray:
        """Air temperature (°C): the year, the day (coolest at dawn, warmest mid-afternoon), passing
        weather systems, summer heat waves, the urban heat island, and rain that cools."""
        cache_key = ("temperature", place.code)
        if cache_key not in w.cache:
            key = stable_key(self.seed, "weather")
            season = w.annual(205.0)  # warmest in late July, coldest in late January
            x = (w.hour - 5.5) % 24.0
            day = np.where(x < 9.0, -np.cos(np.pi * x / 9.0), np.cos(np.pi * (x - 9.0) / 15.0))
            synoptic = 3.0 * value_noise(key, w.ts, 3 * DAY) + 1.2 * value_noise(key ^ 1, w.ts, 20 * HOUR)
            heatwave = value_noise(stable_key(key, "heatwave"), w.ts, 5 * DAY)
            heat = 3.0 * np.clip(season, 0.0, None) * np.clip(heatwave, 0.0, None)
            rain = self.recent_rain(w, place, 60.0)
            local = 0.3 * value_noise(stable_key(key, place.code), w.ts, 6 * HOUR)
            urban = 1.2 * (place.busyness - 0.75)
            w.cache[cache_key] = (
                16.3
                + 12.6 * season
                + synoptic
                + heat
                + urban
                + local
                + 4.2 * day / (1.0 + 0.08 * rain)
                - np.minimum(5.0, 0.25 * rain)
            )
        return w.cache[cache_key]

    def wind(self, w: Window, place: Place) -> np.ndarray:
        """Mean wind (m/s): afternoon breeze, cold fronts (windier in spring) and the gust front
        that runs just ahead of each storm."""
        cache_key = ("wind", place.code)
        if cache_key not in w.cache:
            key = stable_key(self.seed, "wind")
            (exposure,) = _scalars(stable_key(key, place.code), 0, 1)
            front = (value_noise(key, w.ts, 36 * HOUR) + 1.0) / 2.0
            fronts = 9.0 * np.clip((front - 0.78) / 0.22, 0.0, None) ** 1.5
            breeze = 2.0 + 0.7 * exposure + 1.3 * bump(w.hour, 14.5, 4.0)
            breeze = breeze + 0.8 * value_noise(stable_key(key, place.code), w.ts, 3 * HOUR)
            arrival, peak = w.storms.at(place)
            x = (w.ts[:, None] - (arrival - GUST_LEAD)) / (0.4 * w.storms.duration + GUST_LEAD)
            gust = np.where((x > 0) & (x < 1), np.sin(np.pi * x) ** 2, 0.0)
            convective = 0.35 + 0.65 * (0.5 + 0.5 * w.annual(200.0))  # thunderstorms are a summer thing
            squall = (gust * (3.0 + 0.22 * peak)).sum(axis=-1) * convective
            w.cache[cache_key] = (breeze + fronts) * (1.0 + 0.2 * w.annual(75.0)) + squall
        return w.cache[cache_key]

    def pm_background(self, w: Window, place: Place) -> np.ndarray:
        """The district's fine-particle level (µg/m³) before any station's own surroundings:
        city-wide episodes, rare haze, diurnal mixing, winter inversions, rain and wind."""
        cache_key = ("pm", place.code)
        if cache_key not in w.cache:
            city = stable_key(self.seed, "air-city")
            episode = 1.0 + 0.3 * value_noise(city, w.ts, 20 * HOUR)
            haze_knots = (value_noise(stable_key(city, "haze"), w.ts, 36 * HOUR) + 1.0) / 2.0
            haze = 1.0 + 2.8 * np.clip((haze_knots - 0.85) / 0.15, 0.0, None) ** 1.2
            h = w.hour
            diurnal = 1.0 + 0.18 * bump(h, 8.5, 2.5) + 0.22 * bump(h, 22.0, 3.5) - 0.2 * bump(h, 15, 3)
            season = 1.0 + 0.3 * w.annual(15.0)
            washout = 1.0 / (1.0 + 0.04 * self.recent_rain(w, place, 60.0))
            ventilation = 1.0 / (1.0 + 0.05 * np.clip(self.wind(w, place) - 3.0, 0.0, None))
            w.cache[cache_key] = 32.0 * episode * haze * diurnal * season * washout * ventilation
        return w.cache[cache_key]

    def pm25(self, w: Window, series: Series) -> np.ndarray:
        """A station's PM2.5 before sensor noise: the district's level and the station's setting."""
        cache_key = ("pm25", series.entity)
        if cache_key not in w.cache:
            key = stable_key(self.seed, "air", series.entity)
            (level,) = _scalars(key, 0, 1)
            local = 1.0 + 0.2 * value_noise(key, w.ts, 6 * HOUR)
            w.cache[cache_key] = self.pm_background(w, series.place) * (0.8 + 0.45 * level) * local
        return w.cache[cache_key]

    def no2(self, w: Window, series: Series) -> np.ndarray:
        """A station's NO2 before sensor noise: traffic exhaust held in by still, cold air."""
        cache_key = ("no2", series.entity)
        if cache_key not in w.cache:
            key = stable_key(self.seed, "air", series.entity)
            _, roadside = _scalars(key, 0, 2)
            traffic = 0.6 + 0.4 * np.clip((self.tpi(w, series.place) - 1.0) / 2.0, 0.0, 2.5)
            still = (self.pm_background(w, series.place) / 32.0) ** 0.6 * (
                1.0 + 0.25 * bump(w.hour, 21.0, 3.0)
            )
            w.cache[cache_key] = (16.0 + 14.0 * roadside) * traffic * still
        return w.cache[cache_key]

    # --- traffic, people and events ---

    def tpi(self, w: Window, place: Place) -> np.ndarray:
        """A district's traffic index before sensor noise: rush hours, busyness, day and rain."""
        cache_key = ("tpi", place.code)
        if cache_key not in w.cache:
            h = w.hour
            weekday_rush = bump(h, 8.1, 0.8) + 1.1 * bump(h, 17.9, 1.0)
            weekend_rush = 0.45 * bump(h, 11.0, 2.2) + 0.55 * bump(h, 17.0, 2.0)
            rush = np.where(w.weekend, weekend_rush, weekday_rush)
            key = stable_key(self.seed, "tpi", place.code)
            day_factor = 0.88 + 0.22 * uniform(key, w.day)
            daytime = active(h, 6.5, 22.0)
            wander = 0.25 * value_noise(key, w.ts, 2700.0)
            rain = np.minimum(2.5, 0.07 * self.recent_rain(w, place, 20.0))
            busy = place.busyness * (1.5 * daytime + 3.4 * rush * day_factor)
            w.cache[cache_key] = 1.0 + busy + wander + rain
        return w.cache[cache_key]

    def surges(self, w: Window, place: Place) -> np.ndarray:
        """The district's hotline surges that can touch the window: rows of (start, duration,
        multiplier, cause index). Unexplained ones (a burst main, a power cut...) come a couple of
        times a month; every storm that rains hard on the district brings one as it peaks."""
        cache_key = ("surges", place.code)
        if cache_key not in w.cache:
            rows = np.empty((0, 4))
            if self.surge_rate > 0:
                chance = min(1.0, self.surge_rate * SURGE_SLOT / (30 * DAY))
                key = stable_key(self.seed, "surge", place.code)
                found = slot_events(key, w.ts[0], w.ts[-1], SURGE_SLOT, chance, SURGE_MAX, 3)
                cause = np.searchsorted(np.cumsum(SURGE_CAUSE_ODDS), found[:, 3], side="right")
                random = np.column_stack(
                    [found[:, 0], SURGE_MIN + (SURGE_MAX - SURGE_MIN) * found[:, 1], 2.0 + found[:, 2], cause]
                )
                arrival, peak = w.storms.at(place)
                hard = peak >= STORM_SURGE_RAIN
                after = np.column_stack(
                    [
                        arrival[hard] + 0.3 * w.storms.duration[hard],
                        np.clip(w.storms.duration[hard], SURGE_MIN, SURGE_MAX),
                        np.minimum(3.0, 2.0 + (peak[hard] - STORM_SURGE_RAIN) / 20.0),
                        np.full(int(hard.sum()), len(SURGE_CAUSES)),  # "storm"
                    ]
                )
                rows = np.vstack([random, after])
            w.cache[cache_key] = rows
        return w.cache[cache_key]

    def surge_factor(self, w: Window, place: Place) -> np.ndarray:
        """How many times the usual hotline calls the district gets: 1 outside surges."""
        cache_key = ("surge_factor", place.code)
        if cache_key not in w.cache:
            factor = np.ones_like(w.ts)
            for start, duration, multiplier, _ in self.surges(w, place):
                factor += (multiplier - 1.0) * trapezoid(w.ts, start, duration, 900.0, 1800.0)
            w.cache[cache_key] = factor
        return w.cache[cache_key]

    def surge_effect(self, w: Window, place: Place, cause: str, rise: float, tail: float) -> np.ndarray:
        """0..1: how far the district is into the trouble behind its surges of one cause; it
        starts before the calls do and lasts `tail` seconds beyond them (repairs take time)."""
        index = SURGE_CAUSES.index(cause)
        effect = np.zeros_like(w.ts)
        for start, duration, _, kind in self.surges(w, place):
            if int(kind) == index:
                effect = np.maximum(effect, trapezoid(w.ts, start - 300.0, duration + tail, rise, 1200.0))
        return effect

    def hotline_usual(self, w: Window, place: Place) -> np.ndarray:
        """The 12345 calls per hour a district usually gets at this time of the week: a stable
        weekly pattern (busier on Mondays, quieter at weekends) with a small wobble."""
        cache_key = ("hotline", place.code)
        if cache_key not in w.cache:
            h = w.hour
            peaks = 0.75 + 0.25 * np.maximum(bump(h, 9.8, 1.3), bump(h, 14.8, 1.6))
            daily = by_weekday(w, HOTLINE_WEEKDAYS)
            shape = 0.12 + 0.88 * active(h, 7.5, 21.5) * peaks * daily
            wobble = 1.0 + 0.03 * value_noise(stable_key(self.seed, "hotline", place.code), w.ts, 3 * HOUR)
            w.cache[cache_key] = (20.0 + 120.0 * place.people) * shape * wobble
        return w.cache[cache_key]

    def portal_trouble(self, w: Window) -> np.ndarray:
        """0..1: the government portal failing (slow, most applications lost) for 30-90 minutes."""
        if "portal" not in w.cache:
            key = stable_key(self.seed, "portal")
            trouble = np.zeros_like(w.ts)
            for start, length, _ in slot_events(
                key, w.ts[0], w.ts[-1], PORTAL_SLOT, PORTAL_CHANCE, 2 * HOUR, 2
            ):
                trouble = np.maximum(trouble, trapezoid(w.ts, start, 1800.0 + 3600.0 * length, 300.0, 600.0))
            w.cache["portal"] = trouble
        return w.cache["portal"]

    # --- per-series helpers ---

    def sensor_noise(self, w: Window, series: Series, scale: float, stream: int = 0) -> np.ndarray:
        """White sensor noise of the series, a pure function of bucket time (`stream` picks
        another, independent one)."""
        key = series.key if stream == 0 else stable_key(series.key, "noise", stream)
        return scale * normal(key, w.counter)

    def wander(self, w: Window, series: Series, period: float, scale: float) -> np.ndarray:
        """Slow smooth drift of the series (weather, demand) on top of its daily shape."""
        return scale * value_noise(stable_key(series.key, period), w.ts, period)

    def traits(self, series: Series, count: int) -> list[float]:
        """Fixed per-series uniforms: a station's size, capacity or habits."""
        return _scalars(series.key, 1, count)

    def entity_traits(self, series: Series, topic: str, count: int) -> list[float]:
        """Fixed uniforms of the entity itself, shared by its indicators (a hospital's size)."""
        return _scalars(stable_key(self.seed, topic, series.entity), 0, count)


HOTLINE_WEEKDAYS = (1.1, 1.0, 1.0, 0.98, 0.95, 0.72, 0.68)  # Monday .. Sunday


def _places(seed: int, city: City) -> dict[str | None, Place]:
    """Districts by code (plus None for the city) with offsets in km from the city's middle."""
    districts = city.districts
    middle = (
        sum(d.center[0] for d in districts) / max(len(districts), 1),
        sum(d.center[1] for d in districts) / max(len(districts), 1),
    )
    places = {d.code: _place(seed, d, middle) for d in districts}

    def mean(values: list[float], default: float) -> float:
        return sum(values) / len(values) if values else default

    places[None] = Place(
        None,
        0.0,
        0.0,
        mean([p.busyness for p in places.values()], 0.8),
        mean([p.people for p in places.values()], 0.7),
        mean([p.scenic for p in places.values()], 0.5),
    )
    return places


def _place(seed: int, region: RegionInfo, middle: tuple[float, float]) -> Place:
    """A district's position (centre is lon, lat) and its traffic, population and scenic weights."""
    profile = next((v for k, v in _DISTRICT_PROFILES.items() if k in region.name.zh), None)
    if profile is None:
        a, b, c = _scalars(stable_key(seed, "district", region.code), 0, 3)
        profile = (0.6 + 0.3 * a, 0.4 + 0.5 * b, 0.3 + 0.6 * c)
    x_km = (region.center[0] - middle[0]) * 95.0
    y_km = (region.center[1] - middle[1]) * 111.0
    return Place(region.code, x_km, y_km, *profile)


# --- the indicator models -----------------------------------------------------------------------
# Each model maps (world, window, series) to the series' readings before incidents and rounding.


def _calm_counts(
    world: World, w: Window, s: Series, mean: np.ndarray, rel: float = 0.025, poisson: float = 0.12
) -> np.ndarray:
    """A rolling hourly count around `mean` with moderate noise (a share of the mean plus a
    fraction of a count's square-root spread), so the same hour of past weeks is a good baseline."""
    mean = np.clip(mean, 0.0, None)
    spread = np.sqrt((rel * mean) ** 2 + poisson**2 * mean)
    return mean + spread * world.sensor_noise(w, s, 1.0)


def _counts(world: World, w: Window, s: Series, mean: np.ndarray) -> np.ndarray:
    """Calls per hour around `mean`, with the spread of a count (about its square root)."""
    mean = mean * (1.0 + world.wander(w, s, 2 * HOUR, 0.12))
    return mean + 0.5 * np.sqrt(np.clip(mean, 0.0, None)) * world.sensor_noise(w, s, 1.0)


def weekly(w: Window, by_day: tuple[float, ...]) -> np.ndarray:
    """A per-weekday level (Monday first) that slides smoothly into the next day over each day."""
    values = np.asarray(by_day)
    today, tomorrow = values[w.weekday], values[(w.weekday + 1) % 7]
    frac = w.hour / 24.0
    return today + (tomorrow - today) * frac * frac * (3.0 - 2.0 * frac)


# traffic


def _tpi(world: World, w: Window, s: Series) -> np.ndarray:
    return world.tpi(w, s.place) + world.sensor_noise(w, s, 0.12)


def _road_speed(world: World, w: Window, s: Series) -> np.ndarray:
    """Free-flow speed of the road, slowed as its district's traffic index rises."""
    (free,) = world.traits(s, 1)
    congestion = np.exp(-0.12 * (world.tpi(w, s.place) - 1.0))
    speed = (45.0 + 30.0 * free) * congestion * (1.0 + world.wander(w, s, 1800.0, 0.05))
    return speed + world.sensor_noise(w, s, 1.5)


def _road_volume(world: World, w: Window, s: Series) -> np.ndarray:
    """Flow rises with demand up to the road's capacity, then falls as traffic jams (the
    fundamental diagram), measured by the same detector as the speed."""
    (lanes,) = world.entity_traits(s, "road", 1)
    capacity = 1600.0 + 2600.0 * lanes
    x = np.clip((world.tpi(w, s.place) - 1.0) / 4.5, 0.0, 1.6)
    flow = np.where(x <= 1.0, 0.06 + 0.9 * x, 0.96 - 0.45 * (x - 1.0))
    volume = capacity * flow * (1.0 + world.wander(w, s, 1800.0, 0.05))
    return volume * (1.0 + world.sensor_noise(w, s, 0.03))


def parking_kind(station: StationInfo | None, habit: float) -> str:
    """Transit, leisure or shopping, from the car park's name when it says, else from a trait."""
    name = station.name.en.lower().replace("car park", "") if station else ""
    if "station" in name or "airport" in name:
        return "transit"
    if "park" in name:
        return "leisure"
    if any(word in name for word in ("plaza", "mall", "mixc", "centre", "center")):
        return "shopping"
    return "transit" if habit < 0.3 else "leisure" if habit > 0.85 else "shopping"


def _parking_shape(w: Window, kind: str) -> np.ndarray:
    """Malls fill from late morning into the evening, stations and airports all day, parks at weekends."""
    h = w.hour
    if kind == "transit":
        return 0.55 + 0.45 * active(h, 7.0, 21.0)
    if kind == "leisure":
        return active(h, 8.0, 18.0) * np.where(w.weekend, 1.0, 0.6)
    return active(h, 10.0, 21.5) * (0.8 + 0.2 * bump(h, 15.0, 3.0)) * np.where(w.weekend, 1.0, 0.85)


def _parking(world: World, w: Window, s: Series) -> np.ndarray:
    night, peak, habit = world.traits(s, 3)
    low, high = 8.0 + 17.0 * night, 65.0 + 22.0 * peak
    shape = _parking_shape(w, parking_kind(s.station, habit))
    return low + (high - low) * shape + world.wander(w, s, HOUR, 3.0) + world.sensor_noise(w, s, 1.2)


def _bus_punctuality(world: World, w: Window, s: Series) -> np.ndarray:
    """Buses fall behind timetable in congestion and rain."""
    late = 2.4 * np.clip(world.tpi(w, s.place) - 2.5, 0.0, None) + 0.12 * world.recent_rain(w, s.place, 30.0)
    return 96.5 - late + world.wander(w, s, 2 * HOUR, 0.8) + world.sensor_noise(w, s, 0.4)


def metro_open(w: Window) -> np.ndarray:
    """Metro service hours, 6:00-23:00 local time."""
    return (w.hour >= 6.0) & (w.hour < 23.0)


def _metro_load(world: World, w: Window, s: Series) -> np.ndarray:
    """Commuter peaks on weekdays, a broad afternoon at weekends; rain drives people underground."""
    h = w.hour
    weekday_rush = bump(h, 8.0, 0.75) + 0.85 * bump(h, 17.9, 0.95)
    weekend_rush = 0.45 * bump(h, 11.0, 2.5) + 0.5 * bump(h, 17.0, 2.5)
    rush = np.where(w.weekend, weekend_rush, weekday_rush)
    day_factor = 0.92 + 0.14 * uniform(stable_key(world.seed, "metro"), w.day)
    load = 14.0 + 22.0 * active(h, 6.5, 22.0) + 52.0 * rush * day_factor
    load = load + 0.15 * world.recent_rain(w, s.place, 30.0)
    return load + world.wander(w, s, HOUR, 2.0) + world.sensor_noise(w, s, 1.0)


# environment

PM25_24H = (0, 35, 75, 115, 150, 250, 350, 500)
PM10_24H = (0, 50, 150, 250, 350, 420, 500, 600)
NO2_1H = (0, 100, 200, 700, 1200, 2340, 3090, 3840)
O3_1H = (0, 160, 200, 300, 400, 800, 1000, 1200)
IAQI = (0, 50, 100, 150, 200, 300, 400, 500)
AQI_POLLUTANTS = (("env.pm25", PM25_24H), ("env.pm10", PM10_24H), ("env.no2", NO2_1H), ("env.o3", O3_1H))


def _analyser_noise(world: World, w: Window, s: Series) -> np.ndarray:
    """An air analyser's error: it averages over minutes, so the error drifts more than it jumps."""
    return 1.0 + world.wander(w, s, 1800.0, 0.04) + world.sensor_noise(w, s, 0.01)


def _pm25(world: World, w: Window, s: Series) -> np.ndarray:
    return world.pm25(w, s) * _analyser_noise(world, w, s)


def _pm10(world: World, w: Window, s: Series) -> np.ndarray:
    """Fine particles plus coarse dust, which strong (spring) winds raise."""
    ratio = 1.5 + 0.3 * value_noise(stable_key(world.seed, "pm10", s.entity), w.ts, 12 * HOUR)
    dust = 4.0 * np.clip(world.wind(w, s.place) - 6.0, 0.0, None) * (1.0 + 0.5 * w.annual(90.0))
    return (world.pm25(w, s) * ratio + 12.0 + dust) * _analyser_noise(world, w, s)


def _no2(world: World, w: Window, s: Series) -> np.ndarray:
    return world.no2(w, s) * _analyser_noise(world, w, s)


def _o3(world: World, w: Window, s: Series) -> np.ndarray:
    """Photochemical ozone: sunny warm afternoons from late spring to summer; NO2 eats it at night."""
    _, _, suburb = _scalars(stable_key(world.seed, "air", s.entity), 0, 3)
    summer = 0.5 + 0.5 * w.annual(165.0)
    sun = bump(w.hour, 15.0, 3.2)
    warmth = np.clip(0.6 + 0.03 * (world.temperature(w, s.place) - 20.0), 0.6, 1.4)
    clouds = 1.0 / (1.0 + 0.15 * world.recent_rain(w, s.place, 60.0))
    day = 1.0 + 0.2 * value_noise(stable_key(world.seed, "ozone"), w.ts, DAY)
    photo = 170.0 * sun * (0.3 + 0.7 * summer) * warmth * clouds * day
    background = 30.0 * (0.8 + 0.4 * summer)
    titration = 0.35 * world.no2(w, s) * (1.0 - 0.7 * sun)
    o3 = np.clip((background + photo) * (0.9 + 0.2 * suburb) - titration, 2.0, None)
    return o3 * _analyser_noise(world, w, s)


def _aqi(world: World, w: Window, s: Series) -> np.ndarray:
    """AQI per HJ 633-2012: the worst sub-index (IAQI) of the station's own pollutant readings,
    rounded up; its warnings come from theirs (PM2.5 and PM10 on the 24-hour breakpoints, NO2
    and O3 on the 1-hour ones, as real-time reports do)."""
    subs = [np.interp(world.sibling(w, s, key), breaks, IAQI) for key, breaks in AQI_POLLUTANTS]
    return np.ceil(np.maximum.reduce(subs))


def _noise(world: World, w: Window, s: Series) -> np.ndarray:
    quiet, busy = world.traits(s, 2)
    day = (16.0 + 4.0 * busy - 1.5 * w.weekend) * active(w.hour, 6.0, 22.0)
    rain = 0.06 * world.recent_rain(w, s.place, 20.0)
    level = 44.0 + 4.0 * quiet + day + rain + world.wander(w, s, HOUR, 2.0)
    return level + world.sensor_noise(w, s, 1.2)


def _water_temperature(w: Window) -> np.ndarray:
    return 17.0 + 11.0 * w.annual(210.0)


def _dissolved_oxygen(world: World, w: Window, s: Series) -> np.ndarray:
    """Oxygen near saturation for the water temperature (less in summer), algae adding by day and
    taking at night, and the first flush of storm sewage consuming it for a day after a storm."""
    health, algae = world.entity_traits(s, "river", 2)
    t = _water_temperature(w)
    saturation = 14.62 - 0.3898 * t + 0.006969 * t**2 - 0.00005897 * t**3
    photo = 1.0 + (0.05 + 0.08 * algae) * (bump(w.hour, 15.0, 3.5) - bump(w.hour, 5.0, 3.5))
    flush = world.storm_response(w, s.place, 4 * HOUR, 1.5)
    oxygen = (
        saturation * (0.7 + 0.25 * health) * photo * (1.0 + world.wander(w, s, DAY, 0.04)) - 0.035 * flush
    )
    return oxygen + world.sensor_noise(w, s, 0.05)


def _ammonia_nitrogen(world: World, w: Window, s: Series) -> np.ndarray:
    """Sewage load (higher in the cold, when nitrification is slow), and the storm first flush."""
    health, _ = world.entity_traits(s, "river", 2)
    base = (0.2 + 0.35 * (1.0 - health)) * (1.0 + 0.3 * (0.5 + 0.5 * w.annual(20.0)))
    daily = 1.0 + 0.08 * bump(w.hour, 10.0, 3.0)
    flush = world.storm_response(w, s.place, 4 * HOUR, 1.5)
    nh3 = base * daily * (1.0 + world.wander(w, s, DAY, 0.15)) + 0.012 * flush
    return nh3 + world.sensor_noise(w, s, 0.02)


# water


def _river_level(world: World, w: Window, s: Series) -> np.ndarray:
    """A slow gauge: its normal level (higher in the plum-rain season), a gentle drift, and the
    rise from recent storms: urban runoff within hours, the basin's slower swell over a day."""
    normal_level, speed, gain = world.traits(s, 3)
    drift = world.wander(w, s, 18 * HOUR, 0.05) + world.wander(w, s, 4 * HOUR, 0.02)
    fast = world.storm_response(w, s.place, (2.5 + 2.5 * speed) * HOUR, 2.0)
    slow = world.storm_response(w, s.place, RIVER_SLOW_DELAY, 1.5)
    rise = RIVER_GAIN * (0.7 + 0.5 * gain) * (0.65 * fast + 0.35 * slow)
    level = 3.05 + 0.25 * normal_level + 0.1 * (0.5 + 0.5 * w.annual(190.0)) + drift + rise
    return level + world.sensor_noise(w, s, 0.005)


def _waterlogging(world: World, w: Window, s: Series) -> np.ndarray:
    """Water pools once the last minutes' rain exceeds what the point's drains carry away."""
    capacity, depth_gain = world.traits(s, 2)
    excess = world.recent_rain(w, s.place, 20.0) - (5.0 + 7.0 * capacity)
    depth = (0.6 + 0.9 * depth_gain) * np.clip(excess, 0.0, None)
    return np.where(depth > 0, depth + world.sensor_noise(w, s, 0.4), 0.0)


def _supply_pressure(world: World, w: Window, s: Series) -> np.ndarray:
    """Network pressure sags at the morning and evening demand peaks (more in summer) and drops
    within minutes when a main bursts, until it is isolated and repaired."""
    (height,) = world.traits(s, 1)
    h = w.hour
    demand = 0.6 * bump(h, 7.3, 1.3) + 0.35 * bump(h, 11.8, 1.2) + 0.75 * bump(h, 19.2, 1.6)
    summer = 1.0 + 0.3 * (0.5 + 0.5 * w.annual(205.0))
    burst = world.surge_effect(w, s.place, "burst_main", 300.0, 1800.0)
    pressure = 0.32 + 0.03 * height - 0.05 * demand * summer - 0.13 * burst
    return pressure + world.wander(w, s, 6 * HOUR, 0.006) + world.sensor_noise(w, s, 0.003)


def _tap_turbidity(world: World, w: Window, s: Series) -> np.ndarray:
    """Treated water stays clear; storms muddy the raw water and a little gets through."""
    (plant,) = world.traits(s, 1)
    raw = world.storm_response(w, s.place, 8 * HOUR, 1.2)
    base = 0.12 + 0.08 * plant + 0.03 * (0.5 + 0.5 * w.annual(200.0))
    return base + 0.003 * raw + world.wander(w, s, 4 * HOUR, 0.02) + world.sensor_noise(w, s, 0.01)


# energy


def _load_rate(world: World, w: Window, s: Series) -> np.ndarray:
    """Substation load: a daytime plateau with afternoon and evening peaks, which air conditioning
    (hot days) and heating (cold days) raise."""
    low_trait, peak_trait = world.traits(s, 2)
    low, peak = 30.0 + 12.0 * low_trait, 62.0 + 20.0 * peak_trait
    h = w.hour
    shape = 0.45 * active(h, 7.0, 23.0) + 0.55 * np.maximum(bump(h, 15.0, 2.5), bump(h, 20.2, 1.8))
    t = world.temperature(w, s.place)
    climate = 1.1 * np.clip(t - 25.0, 0.0, None) + 0.6 * np.clip(6.0 - t, 0.0, None)
    load = low + ((peak - low) * np.where(w.weekend, 0.93, 1.0) + climate) * shape
    return load + world.wander(w, s, HOUR, 1.2) + world.sensor_noise(w, s, 0.6)


def _grid_load(world: World, w: Window, s: Series) -> np.ndarray:
    """The city's load (MW): industry by day, homes in the evening, cooling in summer heat."""
    h = w.hour
    shape = 0.45 * active(h, 7.0, 23.0) + 0.55 * np.maximum(bump(h, 15.0, 2.8), 0.9 * bump(h, 20.0, 2.0))
    t = world.temperature(w, s.place)
    climate = 280.0 * np.clip(t - 24.0, 0.0, None) + 110.0 * np.clip(7.0 - t, 0.0, None)
    load = (
        7600.0 + 0.35 * (5200.0 + climate) + 0.65 * (5200.0 * np.where(w.weekend, 0.9, 1.0) + climate) * shape
    )
    return load + world.wander(w, s, 3 * HOUR, 120.0) + world.sensor_noise(w, s, 30.0)


def _gas_pressure(world: World, w: Window, s: Series) -> np.ndarray:
    """Medium-pressure gas sags at meal times, most on cold evenings."""
    (margin,) = world.traits(s, 1)
    h = w.hour
    demand = 0.6 * bump(h, 6.8, 1.2) + bump(h, 11.3, 1.0) + 1.1 * bump(h, 17.6, 1.3)
    cold = np.clip((15.0 - world.temperature(w, s.place)) / 15.0, 0.0, 1.5)
    pressure = 0.30 + 0.03 * margin - 0.03 * demand * (0.6 + 0.8 * cold)
    return pressure + world.wander(w, s, 6 * HOUR, 0.004) + world.sensor_noise(w, s, 0.002)


def _ev_charger(world: World, w: Window, s: Series) -> np.ndarray:
    """Chargers fill at lunch and after work, and again on the cheap night tariff."""
    (size,) = world.traits(s, 1)
    h = w.hour
    day = 0.35 * active(h, 7.0, 23.0) + 0.65 * bump(h, 19.5, 2.0) + 0.25 * bump(h, 12.5, 1.5)
    night = 0.45 * bump(h, 1.0, 2.5)
    cold = 0.15 * np.clip((8.0 - world.temperature(w, s.place)) / 10.0, 0.0, 1.0)
    occupancy = 15.0 + 10.0 * size + 45.0 * (day * np.where(w.weekend, 1.1, 1.0) + night) * (1.0 + cold)
    return occupancy + world.wander(w, s, 2 * HOUR, 3.0) + world.sensor_noise(w, s, 1.2)


def _outage_households(world: World, w: Window, s: Series) -> np.ndarray:
    """Scattered faults, lines brought down by gales and lightning, and feeder trips (power cuts)
    that fill the hotline."""
    (grid,) = world.traits(s, 1)
    scattered = (20.0 + 40.0 * grid) * (1.0 + value_noise(stable_key(s.key, "faults"), w.ts, 4 * HOUR))
    gale = 60.0 * np.clip(world.wind(w, s.place) - 9.0, 0.0, None) ** 1.7
    lightning = 8.0 * world.recent_rain(w, s.place, 30.0)
    cut = (2500.0 + 9000.0 * grid) * world.surge_effect(w, s.place, "power_cut", 300.0, 3600.0)
    return scattered + gale + lightning + cut + world.sensor_noise(w, s, 2.0)


# safety


def _calls_110(world: World, w: Window, s: Series) -> np.ndarray:
    """Police calls: steady by day, peaking late evening, busier on Friday and Saturday nights."""
    h = w.hour
    shape = 0.25 + 0.35 * active(h, 7.0, 23.0) + 0.4 * bump(h, 21.0, 2.5)
    night_of = np.where(h < 12.0, (w.weekday + 6) % 7, w.weekday)  # after midnight: last night's day
    party = 1.0 + 0.15 * ((night_of == 4) | (night_of == 5)) * active(h, 18.0, 27.0)
    return _counts(world, w, s, (6.0 + 30.0 * s.place.people) * shape * party)


def _crowd_density(world: World, w: Window, s: Series) -> np.ndarray:
    """The densest watched place of the district: evening crowds, weekend afternoons, summer nights."""
    h = w.hour
    weekend = w.weekend
    warm = 1.0 + 0.15 * (0.5 + 0.5 * w.annual(200.0))
    out = (
        0.35 * active(h, 9.0, 22.0)
        + (0.5 + 0.9 * weekend) * bump(h, 20.0, 2.2)
        + 0.4 * weekend * bump(h, 15.0, 3.0)
    )
    crowd = 0.25 + 0.85 * s.place.people * out * warm
    crowd = crowd / (1.0 + 0.05 * world.recent_rain(w, s.place, 60.0))
    return crowd * (1.0 + world.wander(w, s, HOUR, 0.08)) + world.sensor_noise(w, s, 0.05)


def visibility(world: World, w: Window, place: Place) -> np.ndarray:
    """Visibility (m): haze from fine particles (worse in the humid small hours), rain, and
    radiation fog on cold-season mornings, thickest around dawn, lifting by mid-morning."""
    cache_key = ("visibility", place.code)
    if cache_key not in w.cache:
        humid = 1.0 - 0.25 * bump(w.hour, 5.5, 3.0)
        haze = 32000.0 * (12.0 / (world.pm_background(w, place) + 12.0)) ** 0.9 * humid
        rain = 25000.0 / (1.0 + 0.12 * world.recent_rain(w, place, 20.0))
        key = stable_key(world.seed, "fog")
        cold = 0.5 + 0.5 * w.annual(15.0)
        chance = (value_noise(key, w.ts, 20 * HOUR) + 1.0) / 2.0
        chance = chance + 0.15 * value_noise(stable_key(key, place.code), w.ts, 6 * HOUR)
        depth = np.clip((chance - (1.0 - 0.3 * cold)) / 0.25, 0.0, 1.0) * bump(w.hour, 6.5, 2.3)
        fog = (np.exp(6.6 * depth) - 1.0) / 20000.0
        w.cache[cache_key] = 1.0 / (1.0 / haze + 1.0 / rain + fog)
    return w.cache[cache_key]


def _traffic_accidents(world: World, w: Window, s: Series) -> np.ndarray:
    """Accidents rise with traffic, wet roads, fog, and late on weekend nights."""
    tpi = world.tpi(w, s.place)
    mean = 0.6 + 3.0 * s.place.busyness * np.clip((tpi - 1.0) / 5.0, 0.0, 1.5)
    mean = mean * (1.0 + 0.025 * world.recent_rain(w, s.place, 30.0))
    mean = (
        mean
        + 2.0 / (1.0 + visibility(world, w, s.place) / 300.0)
        + 0.4 * bump(w.hour, 1.0, 2.0) * (1 + w.weekend)
    )
    return _calm_counts(world, w, s, mean, rel=0.08, poisson=0.35)


def _fire_calls(world: World, w: Window, s: Series) -> np.ndarray:
    """Fires at cooking times, in the dry winter and on the hottest days."""
    h = w.hour
    shape = 0.45 + 0.55 * active(h, 7.0, 23.0) + 0.3 * bump(h, 11.5, 1.0) + 0.3 * bump(h, 17.8, 1.2)
    dry = 0.35 * (0.5 + 0.5 * w.annual(20.0))
    heat = 0.03 * np.clip(world.temperature(w, s.place) - 30.0, 0.0, None)
    mean = (0.3 + 1.5 * s.place.people) * shape * (1.0 + dry + heat)
    return _calm_counts(world, w, s, mean, rel=0.08, poisson=0.35)


# city management


def _calls_12345(world: World, w: Window, s: Series) -> np.ndarray:
    """Citizen hotline: a stable weekly pattern of office-hours demand, and rare surges to 2-3x
    (a burst main, a power cut, a hard storm) that stand out against the same hour of past weeks."""
    calls = world.hotline_usual(w, s.place) * world.surge_factor(w, s.place)
    return _calm_counts(world, w, s, calls)


def _answer_rate(world: World, w: Window, s: Series) -> np.ndarray:
    """Agents are scheduled for the usual calls; a surge anywhere leaves callers waiting."""
    usual = sum(world.hotline_usual(w, p) for p in world.districts)
    calls = sum(world.hotline_usual(w, p) * world.surge_factor(w, p) for p in world.districts)
    h = w.hour
    waiting = 16.0 * (1.0 - np.exp(-np.clip(calls / usual - 1.03, 0.0, None) / 0.9))
    rate = 98.3 - waiting - 1.2 * bump(h, 12.3, 0.6) - 1.0 * bump(h, 9.6, 0.8)
    return rate + world.wander(w, s, 2 * HOUR, 0.4) + world.sensor_noise(w, s, 0.3)


def _overdue_cases(world: World, w: Window, s: Series) -> np.ndarray:
    """The backlog of urban management cases past their deadline: storms add fallen trees, blocked
    drains and damaged facilities that take days to clear."""
    (backlog,) = world.traits(s, 1)
    cycle = 0.6 + 0.4 * value_noise(stable_key(s.key, "cases"), w.ts, 2 * DAY)
    storms = world.storm_response(w, s.place, RIVER_SLOW_DELAY, 1.5)
    cases = 1.0 + 4.0 * s.place.people * cycle + 2.0 * backlog + 0.05 * storms
    return cases + world.sensor_noise(w, s, 0.3)


def _streetlight_fault(world: World, w: Window, s: Series) -> np.ndarray:
    (age,) = world.traits(s, 1)
    wear = 0.4 + 0.7 * age + 0.2 * value_noise(stable_key(s.key, "lamps"), w.ts, 3 * DAY)
    storms = 0.015 * world.storm_response(w, s.place, 6 * HOUR, 1.5)
    gale = 0.06 * np.clip(world.wind(w, s.place) - 10.0, 0.0, None)
    return wear + storms + gale + world.sensor_noise(w, s, 0.05)


def _waste_load(world: World, w: Window, s: Series) -> np.ndarray:
    """Transfer stations fill with the morning and afternoon collection rounds, and are emptied by
    the evening; Mondays bring the weekend's waste."""
    (size,) = world.traits(s, 1)
    h = w.hour
    fill = 22.0 + 50.0 * bump(h, 10.5, 2.2) + 28.0 * bump(h, 16.8, 1.8)
    load = fill * (0.9 + 0.15 * size) + 6.0 * (w.weekday == 0) * active(h, 6.0, 20.0)
    return load + world.wander(w, s, 3 * HOUR, 3.0) + world.sensor_noise(w, s, 1.0)


# emergency


def _rainfall(world: World, w: Window, s: Series) -> np.ndarray:
    return world.rain(w, s.place, w.ts)


def _temperature(world: World, w: Window, s: Series) -> np.ndarray:
    return world.temperature(w, s.place) + world.sensor_noise(w, s, 0.1)


def _visibility(world: World, w: Window, s: Series) -> np.ndarray:
    return visibility(world, w, s.place) * (1.0 + world.sensor_noise(w, s, 0.04))


def _wind_speed(world: World, w: Window, s: Series) -> np.ndarray:
    wind = world.wind(w, s.place)
    return wind * (1.0 + world.sensor_noise(w, s, 0.05)) + world.sensor_noise(w, s, 0.25, stream=1)


def _active_events(world: World, w: Window, s: Series) -> np.ndarray:
    """Emergencies in hand: a few at any time, many more in storms, gales and surges."""
    rain = world.recent_rain(w, s.place, 60.0)
    surging = sum(world.surge_factor(w, p) - 1.0 for p in world.districts)
    gale = 0.16 * np.clip(world.wind(w, s.place) - 12.0, 0.0, None)
    events = (
        1.2
        + 0.8 * value_noise(stable_key(s.key, "events"), w.ts, 6 * HOUR)
        + 0.06 * rain
        + 0.25 * surging
        + gale
    )
    return events + world.sensor_noise(w, s, 0.2)


# health


def _er_wait(world: World, w: Window, s: Series) -> np.ndarray:
    """Emergency rooms: evening peak, weekends, the flu season and heat waves."""
    (size,) = world.entity_traits(s, "hospital", 1)
    h = w.hour
    weekend = weekly(w, (0.0, 0.0, 0.0, 0.0, 0.0, 3.0, 3.0))
    wait = 12.0 + 7.0 * size + 8.0 * bump(h, 20.5, 3.0) + 5.0 * bump(h, 10.0, 2.0) + weekend
    wait = wait + 4.0 * flu_season(w) + 0.6 * np.clip(world.temperature(w, s.place) - 33.0, 0.0, None)
    return wait + world.wander(w, s, 1.5 * HOUR, 2.0) + world.sensor_noise(w, s, 1.5)


def _bed_occupancy(world: World, w: Window, s: Series) -> np.ndarray:
    """Wards fill early in the week, empty for the weekend; discharges before noon."""
    (size,) = world.entity_traits(s, "hospital", 1)
    week = weekly(w, (2.5, 3.0, 2.0, 1.0, -0.5, -3.5, -3.0))
    day = -2.5 * bump(w.hour, 11.5, 1.8) + 1.0 * bump(w.hour, 20.0, 3.0)
    occupancy = 76.0 + 14.0 * size + week + day + 4.0 * flu_season(w)
    return occupancy + world.wander(w, s, 12 * HOUR, 0.8) + world.sensor_noise(w, s, 0.2)


def _fever_visits(world: World, w: Window, s: Series) -> np.ndarray:
    (size,) = world.entity_traits(s, "hospital", 1)
    h = w.hour
    shape = 0.25 + 0.75 * active(h, 8.0, 22.0) * (0.8 + 0.2 * bump(h, 10.0, 2.0))
    return _calm_counts(world, w, s, (2.0 + 9.0 * size) * shape * (1.0 + 1.6 * flu_season(w)), 0.06, 0.35)


def _ambulance_calls(world: World, w: Window, s: Series) -> np.ndarray:
    """120 calls: by day more than by night, more in heat and cold snaps and in rain."""
    h = w.hour
    t = world.temperature(w, s.place)
    weather = 1.0 + 0.04 * np.clip(t - 30.0, 0.0, None) + 0.025 * np.clip(5.0 - t, 0.0, None)
    weather = weather + 0.01 * world.recent_rain(w, s.place, 60.0)
    shape = 0.5 + 0.5 * active(h, 7.0, 23.0) + 0.25 * bump(h, 9.0, 2.0)
    return _calm_counts(world, w, s, (1.5 + 9.0 * s.place.people) * shape * weather, 0.06, 0.35)


def _ambulance_response(world: World, w: Window, s: Series) -> np.ndarray:
    """Ambulances are slower through congestion, rain and fog."""
    tpi = world.tpi(w, s.place)
    fog = 2.0 / (1.0 + visibility(world, w, s.place) / 300.0)
    response = 8.8 + 0.55 * (tpi - 1.0) + 0.03 * world.recent_rain(w, s.place, 30.0) + fog
    return response + world.wander(w, s, 2 * HOUR, 0.4) + world.sensor_noise(w, s, 0.3)


# economy


def _industrial_power_yoy(world: World, w: Window, s: Series) -> np.ndarray:
    trend = 3.5 + 2.2 * value_noise(stable_key(world.seed, "economy"), w.ts, 3 * DAY)
    return trend + world.wander(w, s, 10 * HOUR, 0.8) + world.sensor_noise(w, s, 0.3)


def _retail_sales(world: World, w: Window, s: Series) -> np.ndarray:
    """Card spending: shops' hours with lunch and evening peaks, more at weekends, less in storms."""
    h = w.hour
    shops = active(h, 9.5, 22.0) * (0.7 + 0.3 * bump(h, 20.0, 2.0) + 0.15 * bump(h, 12.3, 1.0))
    shape = 0.06 + 0.94 * shops * np.where(w.weekend, 1.3, 1.0)
    rain = 1.0 / (1.0 + 0.008 * world.recent_rain(w, s.place, 60.0))
    sales = 900.0 * shape * rain * (1.0 + world.wander(w, s, 3 * HOUR, 0.04))
    return sales * (1.0 + world.sensor_noise(w, s, 0.03))


def _scenic_load(world: World, w: Window, s: Series) -> np.ndarray:
    """Visitors at the district's scenic areas: day trips, weekends, spring and autumn seasons."""
    h = w.hour
    shape = active(h, 8.0, 17.5, 3.0) * (0.55 + 0.45 * bump(h, 11.0, 2.0) + 0.25 * bump(h, 14.5, 1.5))
    season = 0.8 + 0.2 * np.cos(4.0 * math.pi * (w.doy - 110.0) / 365.2425)  # April and October
    rain = 1.0 / (1.0 + 0.05 * world.recent_rain(w, s.place, 60.0))
    load = 34.0 * s.place.scenic * shape * np.where(w.weekend, 2.1, 1.0) * season * rain
    return load * (1.0 + world.wander(w, s, 2 * HOUR, 0.06)) + world.sensor_noise(w, s, 0.8)


def _freight_flow(world: World, w: Window, s: Series) -> np.ndarray:
    day = 0.45 * active(w.hour, 6.0, 20.0) * np.where(w.weekend, 0.55, 1.0)
    trucks = (150.0 + 500.0 * s.place.busyness) * (0.55 + day) * (1.0 + world.wander(w, s, 2 * HOUR, 0.05))
    return trucks * (1.0 + world.sensor_noise(w, s, 0.03))


# government


def hall_open(w: Window) -> np.ndarray:
    """Government service halls: weekdays 8:30-12:00 and 13:30-17:00 local time."""
    h = w.hour
    return ~w.weekend & (((h >= 8.5) & (h < 12.0)) | ((h >= 13.5) & (h < 17.0)))


def _hall_demand(world: World, w: Window, s: Series) -> tuple[np.ndarray, float]:
    """Visitors waiting in a hall (shared by its queue and waiting time) and its speed trait."""
    speed, rush = world.entity_traits(s, "hall", 2)
    h = w.hour
    queue = (8.0 + 5.0 * rush) * np.maximum(bump(h, 10.0, 1.0), 0.85 * bump(h, 14.8, 1.1))
    monday = 3.0 * (w.weekday == 0)
    wander = 1.5 * value_noise(stable_key(world.seed, "hall", s.entity), w.ts, HOUR)
    return queue + monday + wander, speed


def _hall_wait(world: World, w: Window, s: Series) -> np.ndarray:
    demand, speed = _hall_demand(world, w, s)
    return np.clip(4.0 + 2.0 * speed + demand + world.sensor_noise(w, s, 1.0), 0.0, None)


def _hall_queue(world: World, w: Window, s: Series) -> np.ndarray:
    demand, speed = _hall_demand(world, w, s)
    return np.clip(2.0 + 1.9 * demand * (1.0 + 0.2 * speed) + world.sensor_noise(w, s, 1.5), 0.0, None)


APPLICATION_WEEKDAYS = (1.08, 1.0, 1.0, 0.98, 0.92, 0.45, 0.42)  # Monday .. Sunday


def applications_usual(world: World, w: Window) -> np.ndarray:
    """Online applications per hour as usual for the time of the week (office hours, evenings)."""
    if "applications" not in w.cache:
        h = w.hour
        office = active(h, 8.0, 22.5, 1.5) * (
            0.5 + 0.5 * np.maximum(bump(h, 10.2, 1.4), 0.9 * bump(h, 15.2, 1.6))
        )
        evening = 0.25 * bump(h, 20.8, 1.5)
        wobble = 1.0 + 0.03 * value_noise(stable_key(world.seed, "applications"), w.ts, 3 * HOUR)
        daily = by_weekday(w, APPLICATION_WEEKDAYS)
        w.cache["applications"] = (12.0 + 260.0 * (office + evening) * daily) * wobble
    return w.cache["applications"]


def _online_applications(world: World, w: Window, s: Series) -> np.ndarray:
    """A stable weekly pattern; when the portal fails, most applications never arrive."""
    usual = applications_usual(world, w)
    return _calm_counts(world, w, s, usual * (1.0 - 0.88 * world.portal_trouble(w)))


def _portal_response(world: World, w: Window, s: Series) -> np.ndarray:
    response = 320.0 + 260.0 * applications_usual(world, w) / 280.0 + world.wander(w, s, 2 * HOUR, 40.0)
    response = response * (1.0 + 5.0 * world.portal_trouble(w))
    return response * (1.0 + world.sensor_noise(w, s, 0.06))


Model = Callable[[World, Window, Series], np.ndarray]


@dataclass(frozen=True)
class Spec:
    """How an indicator is simulated: its model, how prone it is to incidents (and how gradually
    they build: the share of an incident spent ramping up or down), when it reports."""

    model: Model
    incident_weight: float = 1.0
    open_hours: Callable[[Window], np.ndarray] | None = None
    ramp: float = 0.25
    max_severity: int = 4


# Weather, rain and rivers come from the weather only; the AQI from its pollutants' readings;
# waterlogging rarely appears without rain (a burst main); hall queues and the metro only exist
# while open. Slow quantities (loads, waits, occupancy) build up gradually when they go wrong.
MODELS: dict[str, Spec] = {
    "traffic.tpi": Spec(_tpi),
    "traffic.road_speed": Spec(_road_speed),
    "traffic.road_volume": Spec(_road_volume, incident_weight=0.0),
    "traffic.parking_occupancy": Spec(_parking),
    "traffic.bus_punctuality": Spec(_bus_punctuality, incident_weight=0.4),
    "traffic.metro_load": Spec(_metro_load, incident_weight=0.3, open_hours=metro_open),
    "env.aqi": Spec(_aqi, incident_weight=0.0),
    "env.pm25": Spec(_pm25, incident_weight=0.5, ramp=0.4),
    "env.pm10": Spec(_pm10, incident_weight=0.3, ramp=0.4),
    "env.no2": Spec(_no2, incident_weight=0.3, max_severity=1),
    "env.o3": Spec(_o3, incident_weight=0.2, ramp=0.4, max_severity=2),
    "env.noise": Spec(_noise),
    "env.dissolved_oxygen": Spec(_dissolved_oxygen, incident_weight=0.2, ramp=0.4),
    "env.ammonia_nitrogen": Spec(_ammonia_nitrogen, incident_weight=0.3, ramp=0.4),
    "water.river_level": Spec(_river_level, incident_weight=0.0),
    "water.waterlogging_depth": Spec(_waterlogging, incident_weight=0.3),
    "water.supply_pressure": Spec(_supply_pressure, incident_weight=0.2),
    "water.tap_turbidity": Spec(_tap_turbidity, incident_weight=0.2, ramp=0.4),
    "energy.load_rate": Spec(_load_rate, ramp=0.45),
    "energy.grid_load": Spec(_grid_load, incident_weight=0.2, ramp=0.45),
    "energy.gas_pressure": Spec(_gas_pressure, incident_weight=0.2),
    "energy.ev_charger_occupancy": Spec(_ev_charger, incident_weight=0.4, ramp=0.4),
    "energy.outage_households": Spec(_outage_households, incident_weight=0.4, max_severity=3),
    "safety.calls_110": Spec(_calls_110),
    "safety.crowd_density": Spec(_crowd_density, incident_weight=0.5, ramp=0.4),
    "safety.traffic_accidents": Spec(_traffic_accidents, incident_weight=0.4),
    "safety.fire_calls": Spec(_fire_calls, incident_weight=0.4),
    "hotline.calls_12345": Spec(_calls_12345, incident_weight=0.0),
    "hotline.answer_rate": Spec(_answer_rate, incident_weight=0.3),
    "city.overdue_cases": Spec(_overdue_cases, incident_weight=0.2, ramp=0.45),
    "city.streetlight_fault": Spec(_streetlight_fault, incident_weight=0.2),
    "city.waste_load": Spec(_waste_load, incident_weight=0.4, ramp=0.4),
    "weather.rainfall": Spec(_rainfall, incident_weight=0.0),
    "weather.temperature": Spec(_temperature, incident_weight=0.0),
    "weather.visibility": Spec(_visibility, incident_weight=0.0),
    "weather.wind_speed": Spec(_wind_speed, incident_weight=0.0),
    "emergency.active_events": Spec(_active_events, incident_weight=0.3),
    "health.er_wait": Spec(_er_wait, ramp=0.45),
    "health.bed_occupancy": Spec(_bed_occupancy, incident_weight=0.3, ramp=0.45),
    "health.fever_visits": Spec(_fever_visits, incident_weight=0.3, ramp=0.4),
    "health.ambulance_calls": Spec(_ambulance_calls, incident_weight=0.4),
    "health.ambulance_response": Spec(_ambulance_response, incident_weight=0.4),
    "economy.industrial_power_yoy": Spec(_industrial_power_yoy, incident_weight=0.15, ramp=0.45),
    "economy.retail_sales": Spec(_retail_sales, incident_weight=0.0),
    "economy.scenic_load": Spec(_scenic_load, incident_weight=0.3, ramp=0.4),
    "economy.freight_flow": Spec(_freight_flow, incident_weight=0.0),
    "gov.hall_wait": Spec(_hall_wait, open_hours=hall_open),
    "gov.hall_queue": Spec(_hall_queue, incident_weight=0.6, open_hours=hall_open),
    "gov.online_applications": Spec(_online_applications, incident_weight=0.0),
    "gov.portal_response": Spec(_portal_response, incident_weight=0.3),
}


# --- incidents and glitches ---------------------------------------------------------------------


def incident_target(
    indicator: Indicator, level_draw: float, depth: float, max_severity: int = 4
) -> tuple[float, float]:
    """The warning limit an incident crosses and how far past it goes, mostly blue or yellow, and
    never past level `max_severity` (a local incident does not make a red ozone episode)."""
    thresholds = indicator.thresholds
    assert thresholds is not None
    limits = thresholds.limits()
    allowed = [severity for severity, _ in limits if severity <= max_severity] or [limits[0][0]]
    odds = np.array([LEVEL_ODDS[severity - 1] for severity in allowed])
    pick = int(np.searchsorted(np.cumsum(odds / odds.sum()), level_draw, side="right"))
    pick = min(pick, len(allowed) - 1)
    limit = limits[pick][1]
    if pick + 1 < len(limits):
        beyond = limits[pick + 1][1]
        if pick + 1 >= len(allowed):  # capped: not much past the highest allowed level
            beyond = limit + math.copysign(min(abs(beyond - limit), 0.5 * abs(limit)), beyond - limit)
    else:  # past the worst level: about one more level's step, within the physical bounds
        step = limit - limits[pick - 1][1] if pick else 0.2 * limit
        low, high = indicator.bounds
        beyond = min(max(limit + step, low), high)
    return limit, (0.15 + 0.6 * depth) * (beyond - limit)


def apply_incidents(
    series: Series,
    w: Window,
    values: np.ndarray,
    rate: float,
    ramp_share: float = 0.25,
    max_severity: int = 4,
) -> np.ndarray:
    """Push the series past a warning limit for 15-90 minutes, ramping up and down over
    `ramp_share` of the incident each (a quick accident, or a load that builds).

    At most one incident starts per slot, decided by hashing (series, slot), so it is the same
    whatever the window; slots just before the window are included for incidents still running.
    """
    thresholds = series.indicator.thresholds if series.indicator is not None else None
    chance = min(1.0, rate * INCIDENT_SLOT / DAY)
    if thresholds is None or chance <= 0 or not values.size:
        return values
    key = stable_key(series.key, "incident")
    first = math.floor((w.ts[0] - INCIDENT_MAX) / INCIDENT_SLOT)
    slots = np.arange(first, math.floor(w.ts[-1] / INCIDENT_SLOT) + 1)
    draws = uniform(key, slots[:, None] * 8 + np.arange(5)).reshape(len(slots), 5)
    sign = 1.0 if thresholds.direction == "above" else -1.0
    hit = draws[:, 0] < chance
    for slot, (_, when, length, level, depth) in zip(slots[hit], draws[hit], strict=True):
        start = slot * INCIDENT_SLOT + when * INCIDENT_SLOT
        duration = INCIDENT_MIN + (INCIDENT_MAX - INCIDENT_MIN) * length
        ramp = np.clip(np.minimum(w.ts - start, start + duration - w.ts) / (ramp_share * duration), 0, 1)
        if not ramp.any():
            continue
        limit, past = incident_target(series.indicator, level, depth, max_severity)
        jitter = 1.0 + 0.4 * value_noise(key, w.ts, 600.0)
        target = limit + past * jitter
        values = values + ramp * np.clip(sign * (target - values), 0.0, None) * sign
    return values


GLITCHES = ("nan", "negative", "spike", "unknown_entity")


def glitch(series: Series, value: float, draw: float, known: set[str]) -> tuple[str, float]:
    """A malformed (entity, value) of the kinds real sensors send; `draw` picks the kind."""
    kind = GLITCHES[min(int(draw * len(GLITCHES)), len(GLITCHES) - 1)]
    low, high = series.indicator.bounds
    if kind == "nan":
        return series.entity, math.nan
    if kind == "negative":
        return series.entity, -abs(value) - 1.0 if low >= 0 else low - 1.0 - abs(value)
    if kind == "spike":
        return series.entity, 9999.0 if high < 9999.0 else high * 10.0
    entity = f"{series.entity}-{int(draw * 1e6) % 90 + 10}"
    while entity in known:
        entity += "X"
    return entity, value


def silence(
    key: int, w: Window, slot: float, chance: float, shortest: float, longest: float
) -> np.ndarray | None:
    """True where an entity sends nothing: at most one outage per slot, `shortest`-`longest` s."""
    events = slot_events(key, w.ts[0], w.ts[-1], slot, chance, longest, 1)
    if not len(events):
        return None
    silent = np.zeros(w.ts.shape, dtype=bool)
    for start, length in events:
        silent |= (w.ts >= start) & (w.ts < start + shortest + (longest - shortest) * length)
    return silent if silent.any() else None


# --- the adapter --------------------------------------------------------------------------------


class Options(base.Options):
    """The simulator's settings; the defaults give a lively but believable demo city."""

    seed: int = 20261123
    step: float = Field(default=300.0, description="seconds between readings of each series")
    incident_rate: float = Field(
        default=1.2, ge=0, le=8, description="incidents per series per day (before weighting)"
    )
    glitch_rate: float = Field(default=0.0005, ge=0, le=1, description="share of malformed records")
    outage_rate: float = Field(
        default=0.3,
        ge=0,
        le=4,
        description="outages per station per day, 20-120 min of silence each (about one station out "
        "at any moment in Wuxi); a district's whole feed goes silent far more rarely; 0: none",
    )
    surge_rate: float = Field(
        default=1.5,
        ge=0,
        le=30,
        description="unexplained hotline surges per district per 30 days (storms bring more); 0: no surges",
    )
    indicators: list[str] | None = Field(default=None, description="simulate only these keys")
    exclude: list[str] = Field(default_factory=list, description="simulate every indicator but these keys")

    @field_validator("step", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float:
        return parse_duration(value)


class SimulatorAdapter:
    """A deterministic simulated city behind the ordinary adapter protocol, backfill included."""

    Options: ClassVar[type[base.Options]] = Options
    backfills: ClassVar[bool] = True

    def __init__(self, options: Options, context: AdapterContext) -> None:
        self.options = options
        self.context = context
        self.world = World(
            options.seed, context.city, context.catalog, options.incident_rate, options.surge_rate
        )
        self.known_entities = context.city.entity_codes()
        self.series = _all_series(options, context, self.world)
        self.stations = sorted({s.entity for s in self.series if s.station is not None})
        self.district_feeds = sorted({s.entity for s in self.series if s.indicator.level == "district"})

    def fetch(self, since: str | None, until: datetime) -> Batch:
        """One record per series per bucket in (since, until]; since=None gives the latest bucket.

        Stations in an outage (and districts whose feed is down) send nothing for those buckets.
        """
        ts = self._buckets(since, until)
        if not ts.size:
            return Batch([], since)
        times = [datetime.fromtimestamp(t, UTC) for t in ts.tolist()]
        isos = [t.isoformat() for t in times]
        window = self._window(ts, times)
        silent = self.silences(window)
        records: list[Record] = []
        for series in self.series:
            records.extend(self._records(series, window, times, isos, silent.get(series.entity)))
        return Batch(records, isos[-1])

    def silences(self, w: Window) -> dict[str, np.ndarray]:
        """Per entity, True at the buckets it sends nothing (only entities with an outage)."""
        rate = self.options.outage_rate
        found: dict[str, np.ndarray] = {}
        if rate <= 0:
            return found
        seed = self.options.seed
        for code in self.stations:
            chance = min(1.0, rate * OUTAGE_SLOT / DAY)
            mask = silence(stable_key(seed, "outage", code), w, OUTAGE_SLOT, chance, OUTAGE_MIN, OUTAGE_MAX)
            if mask is not None:
                found[code] = mask
        for code in self.district_feeds:
            chance = min(1.0, rate * FEED_GAP_SHARE * FEED_GAP_SLOT / DAY)
            mask = silence(
                stable_key(seed, "feed-gap", code), w, FEED_GAP_SLOT, chance, FEED_GAP_MIN, FEED_GAP_MAX
            )
            if mask is not None:
                found[code] = mask
        return found

    def _buckets(self, since: str | None, until: datetime) -> np.ndarray:
        """Bucket times (epoch seconds, multiples of step) after `since` and not after `until`."""
        step = self.options.step
        last = math.floor(_aware(until).timestamp() / step)
        if since is None:
            first = last
        else:
            first = math.floor(_aware(datetime.fromisoformat(since)).timestamp() / step) + 1
        return np.arange(first, last + 1, dtype=np.float64) * step

    def _window(self, ts: np.ndarray, times: list[datetime]) -> Window:
        zone = self.context.timezone
        edges = {times[0].astimezone(zone).utcoffset(), times[-1].astimezone(zone).utcoffset()}
        if len(edges) == 1:
            offsets: Any = edges.pop().total_seconds()  # type: ignore[union-attr]
        else:  # the window spans a daylight-saving change
            offsets = np.array([t.astimezone(zone).utcoffset().total_seconds() for t in times])
        local = ts + offsets
        day = np.floor(local / DAY).astype(np.int64)
        return Window(
            ts=ts,
            counter=np.round(ts * 1000.0).astype(np.int64),
            hour=(local - day * DAY) / HOUR,
            day=day,
            weekday=(day + 3) % 7,  # 1970-01-01 was a Thursday
            doy=np.mod(local / DAY, 365.2425),  # day of the year, near enough (0 = 1 January)
            storms=self.world.storms_for(ts),
        )

    def _values(self, series: Series, w: Window) -> np.ndarray:
        """The series' readings as the sensor reports them: model, incidents, rounding, bounds."""
        spec = MODELS[series.indicator.key]
        values = self.world.reading(w, series)
        if spec.open_hours is not None:
            values = np.where(spec.open_hours(w), values, 0.0)
        low, high = series.indicator.bounds
        return np.clip(np.round(values, series.indicator.decimals), low, high)

    def _records(
        self, series: Series, w: Window, times: list[datetime], isos: list[str], silent: np.ndarray | None
    ) -> list[Record]:
        key, entity, prefix = series.indicator.key, series.entity, series.raw_prefix
        values = self._values(series, w).tolist()
        kept = range(len(times)) if silent is None else np.flatnonzero(~silent).tolist()
        records = [
            Record(key, entity, times[i], values[i], f'{prefix}{isos[i]}","value":{values[i]!r}}}')
            for i in kept
        ]
        rate = self.options.glitch_rate
        if rate > 0:
            draws = uniform(stable_key(series.key, "glitch"), w.counter)
            for i in np.flatnonzero(draws < rate).tolist():
                if silent is not None and silent[i]:
                    continue
                at = i if silent is None else int(np.count_nonzero(~silent[:i]))
                bad_entity, bad_value = glitch(series, values[i], draws[i] / rate, self.known_entities)
                raw = _raw(key, bad_entity, isos[i], bad_value)
                records[at] = Record(key, bad_entity, times[i], bad_value, raw)
        return records


def _aware(moment: datetime) -> datetime:
    """Watermarks and `until` are UTC; a naive one is read as UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _raw(indicator: str, entity: str, iso: str, value: float) -> str:
    """The compact JSON text of a record, as a sensor gateway would send it."""
    fields = {"indicator": indicator, "entity": entity, "observed_at": iso, "value": value}
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


def _all_series(options: Options, context: AdapterContext, world: World) -> list[Series]:
    """Every simulated series: per station of the indicator's kinds, per district, or the city.

    Catalog indicators the simulator has no model for (a deployment's own, the composite indices
    the pipeline computes) are skipped; naming an unknown key in `indicators` or `exclude` is an
    error that names it.
    """
    catalog = context.catalog
    simulated = [k for k in catalog.keys() if k in MODELS]
    wanted = set(options.indicators) if options.indicators is not None else None
    if wanted is not None:
        unknown = sorted(k for k in wanted if k not in MODELS or k not in catalog)
        if unknown:
            raise ValueError(
                f"indicators: the simulator cannot simulate {unknown} (it simulates: {', '.join(simulated)})"
            )
    excluded = set(options.exclude)
    unknown = sorted(k for k in excluded if k not in catalog)
    if unknown:
        raise ValueError(f"exclude: {unknown} not in the indicator catalog")
    series = []
    for indicator in catalog:
        if indicator.key not in MODELS or indicator.key in excluded:
            continue
        if wanted is not None and indicator.key not in wanted:
            continue
        for entity, place, station in _entities(indicator, context.city, world):
            key = stable_key(options.seed, indicator.key, entity)
            names = {"indicator": indicator.key, "entity": entity}
            prefix = json.dumps(names, ensure_ascii=False, separators=(",", ":"))[:-1]
            prefix += ',"observed_at":"'
            series.append(Series(indicator, entity, place, station, key, prefix))
    return series


def _entities(indicator: Indicator, city: City, world: World) -> list[tuple[str, Place, StationInfo | None]]:
    """The entities that report `indicator`, each with the place whose weather and traffic it feels."""
    if indicator.level == "station":
        kinds = set(indicator.station_kinds)
        return [
            (s.code, world.places.get(s.region_code, world.places[None]), s)
            for s in city.stations
            if s.kind in kinds
        ]
    if indicator.level == "district":
        return [(d.code, world.places[d.code], None) for d in city.districts]
    return [(r.code, world.places[None], None) for r in city.regions if r.level == "city"]
