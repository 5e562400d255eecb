"""A simulated but plausible city, so the operations centre has live data without any department.

Every value is a pure function of (seed, indicator, entity, bucket time): a counter-based hash
(splitmix64) replaces random-number state, so overlapping windows, a backfill and the live feed,
or two processes all produce the same reading for the same bucket. Realism comes from structure
layered on that hash: daily and weekly rhythms in the city's local time, slow "value noise"
(hashed knots, smoothly interpolated), rainstorms that cross the districts and drive waterlogging,
rivers, traffic and hotline calls, per-series incidents that cross the catalog's warning levels,
and a small share of malformed records like a real sensor sends.
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
from indicators.catalog import Indicator

HOUR = 3600.0
DAY = 86400.0

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)

# Rainstorms: at most one may start in each 12-hour slot; their effects last up to three days.
STORM_SLOT = 12 * HOUR
STORM_CHANCE = 0.2
STORM_LOOKBACK = 3 * DAY
MIN_STORM_SPEED_KMH = 25.0
RIVER_PEAK_DELAY = 6 * HOUR
RIVER_GAIN = 0.006  # metres of river rise per millimetre of rain that fell on the district

# Incidents: at most one may start in each 3-hour slot of a series.
INCIDENT_SLOT = 3 * HOUR
INCIDENT_MIN, INCIDENT_MAX = 15 * 60.0, 90 * 60.0
LEVEL_ODDS = (0.55, 0.28, 0.13, 0.04)  # blue, yellow, orange, red

# Traffic busyness and population weight of the demo city's districts; other cities hash theirs.
_DISTRICT_PROFILES = {
    "梁溪": (1.0, 0.8),
    "新吴": (0.97, 0.6),
    "滨湖": (0.8, 0.6),
    "锡山": (0.7, 0.55),
    "惠山": (0.72, 0.55),
    "江阴": (0.75, 1.0),
    "宜兴": (0.62, 0.85),
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


# --- shapes of the day --------------------------------------------------------------------------


def bump(hour: np.ndarray, centre: float, width: float) -> np.ndarray:
    """A Gaussian bump of the hour of day, wrapping round midnight."""
    d = (hour - centre + 12.0) % 24.0 - 12.0
    return np.exp(-((d / width) ** 2))


def active(hour: np.ndarray, start: float, end: float, sharpness: float = 2.0) -> np.ndarray:
    """About 1 between `start` and `end` o'clock, about 0 outside, with soft edges."""
    rise = 1.0 / (1.0 + np.exp(-sharpness * (hour - start)))
    fall = 1.0 / (1.0 + np.exp(-sharpness * (end - hour)))
    return rise * fall


# --- the simulated world ------------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """Where weather and traffic are decided: a district, or the whole city (code None)."""

    code: str | None
    x_km: float
    y_km: float
    busyness: float
    people: float


@dataclass(frozen=True)
class Series:
    """One simulated time series and the constants its records share."""

    indicator: Indicator
    entity: str
    place: Place
    station: StationInfo | None
    key: int
    raw_prefix: str


@dataclass
class Window:
    """The buckets of one fetch in UTC and local time, and drivers shared by the series."""

    ts: np.ndarray
    counter: np.ndarray
    hour: np.ndarray
    day: np.ndarray
    weekday: np.ndarray
    storms: Storms
    cache: dict[tuple[Any, ...], np.ndarray] = field(default_factory=dict)

    @property
    def weekend(self) -> np.ndarray:
        return self.weekday >= 5


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
    """The models behind the series: weather, traffic and people, shared per fetch via caches."""

    def __init__(self, seed: int, city: City):
        self.seed = seed
        self.places = _places(seed, city)
        farthest = max(math.hypot(p.x_km, p.y_km) for p in self.places.values())
        self.storm_lead = farthest / MIN_STORM_SPEED_KMH * HOUR + 1.0

    def storms_for(self, ts: np.ndarray) -> Storms:
        """Every storm that can reach any place within a bucket's rain or river memory."""
        return find_storms(self.seed, ts[0] - STORM_LOOKBACK - self.storm_lead, ts[-1] + self.storm_lead)

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

    def river_rise(self, w: Window, place: Place) -> np.ndarray:
        """Metres added to a river by the storms of the last days: rise over hours, recede over a day.

        A pure function of time (a sum of per-storm responses), so any window sees the same level;
        the response is cut at STORM_LOOKBACK (where it has long faded) so every window sums the
        same storms.
        """
        city = self.places[None]
        rise = np.zeros_like(w.ts)
        for where, weight in ((place, 0.6), (city, 0.4)):
            arrival, peak = w.storms.at(where)
            volume = peak * w.storms.duration / HOUR * 0.5
            age = w.ts[:, None] - arrival
            tau = np.where((age > 0) & (age < STORM_LOOKBACK), age / RIVER_PEAK_DELAY, 0.0)
            rise += weight * RIVER_GAIN * (volume * tau * np.exp(1.0 - tau)).sum(axis=-1)
        return rise

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

    def pm25(self, w: Window, series: Series) -> np.ndarray:
        """Station PM2.5 before sensor noise: city-wide episodes, rare haze, diurnal mixing, rain."""
        cache_key = ("pm25", series.entity)
        if cache_key not in w.cache:
            key = stable_key(self.seed, "air", series.entity)
            (level,) = _scalars(key, 0, 1)
            city = stable_key(self.seed, "air-city")
            episode = 1.0 + 0.3 * value_noise(city, w.ts, 20 * HOUR)
            haze_knots = (value_noise(stable_key(city, "haze"), w.ts, 36 * HOUR) + 1.0) / 2.0
            haze = 1.0 + 2.8 * np.clip((haze_knots - 0.85) / 0.15, 0.0, None) ** 1.2
            h = w.hour
            diurnal = 1.0 + 0.18 * bump(h, 8.5, 2.5) + 0.22 * bump(h, 22.0, 3.5) - 0.2 * bump(h, 15, 3)
            local = 1.0 + 0.2 * value_noise(key, w.ts, 6 * HOUR)
            washout = 1.0 / (1.0 + 0.04 * self.recent_rain(w, series.place, 60.0))
            w.cache[cache_key] = (25.0 + 15.0 * level) * episode * haze * diurnal * local * washout
        return w.cache[cache_key]

    def sensor_noise(self, w: Window, series: Series, scale: float) -> np.ndarray:
        """White sensor noise of the series, a pure function of bucket time."""
        return scale * normal(series.key, w.counter)

    def wander(self, w: Window, series: Series, period: float, scale: float) -> np.ndarray:
        """Slow smooth drift of the series (weather, demand) on top of its daily shape."""
        return scale * value_noise(stable_key(series.key, period), w.ts, period)

    def traits(self, series: Series, count: int) -> list[float]:
        """Fixed per-series uniforms: a station's size, capacity or habits."""
        return _scalars(series.key, 1, count)


def _places(seed: int, city: City) -> dict[str | None, Place]:
    """Districts by code (plus None for the city) with offsets in km from the city's middle."""
    districts = city.districts
    middle = (
        sum(d.center[0] for d in districts) / max(len(districts), 1),
        sum(d.center[1] for d in districts) / max(len(districts), 1),
    )
    places = {d.code: _place(seed, d, middle) for d in districts}
    busy = [p.busyness for p in places.values()] or [0.8]
    people = [p.people for p in places.values()] or [0.7]
    places[None] = Place(None, 0.0, 0.0, sum(busy) / len(busy), sum(people) / len(people))
    return places


def _place(seed: int, region: RegionInfo, middle: tuple[float, float]) -> Place:
    """A district's position (centre is lon, lat) and its traffic and population weights."""
    profile = next((v for k, v in _DISTRICT_PROFILES.items() if k in region.name.zh), None)
    if profile is None:
        a, b = _scalars(stable_key(seed, "district", region.code), 0, 2)
        profile = (0.6 + 0.3 * a, 0.4 + 0.5 * b)
    x_km = (region.center[0] - middle[0]) * 95.0
    y_km = (region.center[1] - middle[1]) * 111.0
    return Place(region.code, x_km, y_km, *profile)


# --- the indicator models -----------------------------------------------------------------------


def _tpi(world: World, w: Window, s: Series) -> np.ndarray:
    return world.tpi(w, s.place) + world.sensor_noise(w, s, 0.12)


def _road_speed(world: World, w: Window, s: Series) -> np.ndarray:
    """Free-flow speed of the road, slowed as its district's traffic index rises."""
    (free,) = world.traits(s, 1)
    congestion = np.exp(-0.12 * (world.tpi(w, s.place) - 1.0))
    speed = (45.0 + 30.0 * free) * congestion * (1.0 + world.wander(w, s, 1800.0, 0.05))
    return speed + world.sensor_noise(w, s, 1.5)


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


_PM_BREAKS = (0, 35, 75, 115, 150, 250, 350, 500)
_AQI_BREAKS = (0, 50, 100, 150, 200, 300, 400, 500)


def _pm25(world: World, w: Window, s: Series) -> np.ndarray:
    return world.pm25(w, s) * (1.0 + world.sensor_noise(w, s, 0.04))


def _aqi(world: World, w: Window, s: Series) -> np.ndarray:
    """AQI per HJ 633: the worse of PM2.5's sub-index and an afternoon ozone sub-index."""
    pm_index = np.interp(world.pm25(w, s), _PM_BREAKS, _AQI_BREAKS)
    ozone_day = 1.0 + 0.3 * value_noise(stable_key(world.seed, "ozone"), w.ts, DAY)
    ozone = 25.0 + 45.0 * bump(w.hour, 15.0, 3.0) * ozone_day
    return np.maximum(pm_index, ozone) + world.sensor_noise(w, s, 2.0)


def _noise(world: World, w: Window, s: Series) -> np.ndarray:
    quiet, busy = world.traits(s, 2)
    day = (16.0 + 4.0 * busy) * active(w.hour, 6.0, 22.0) - 1.5 * w.weekend
    rain = 0.06 * world.recent_rain(w, s.place, 20.0)
    level = 44.0 + 4.0 * quiet + day + rain + world.wander(w, s, HOUR, 2.0)
    return level + world.sensor_noise(w, s, 1.2)


def _river_level(world: World, w: Window, s: Series) -> np.ndarray:
    """A slow gauge: its normal level, a gentle drift, and the rise from recent storms."""
    (normal_level,) = world.traits(s, 1)
    drift = world.wander(w, s, 18 * HOUR, 0.05) + world.wander(w, s, 4 * HOUR, 0.02)
    level = 3.05 + 0.25 * normal_level + drift + world.river_rise(w, s.place)
    return level + world.sensor_noise(w, s, 0.005)


def _waterlogging(world: World, w: Window, s: Series) -> np.ndarray:
    """Water pools once the last minutes' rain exceeds what the point's drains carry away."""
    capacity, depth_gain = world.traits(s, 2)
    excess = world.recent_rain(w, s.place, 20.0) - (5.0 + 7.0 * capacity)
    depth = (0.6 + 0.9 * depth_gain) * np.clip(excess, 0.0, None)
    return np.where(depth > 0, depth + world.sensor_noise(w, s, 0.4), 0.0)


def _load_rate(world: World, w: Window, s: Series) -> np.ndarray:
    """Substation load: a daytime plateau with afternoon (cooling) and evening (homes) peaks."""
    low_trait, peak_trait = world.traits(s, 2)
    low, peak = 30.0 + 12.0 * low_trait, 64.0 + 20.0 * peak_trait
    h = w.hour
    shape = 0.45 * active(h, 7.0, 23.0) + 0.55 * np.maximum(bump(h, 15.0, 2.5), bump(h, 20.2, 1.8))
    weather = 1.0 + 0.06 * value_noise(stable_key(world.seed, "heat"), w.ts, 30 * HOUR)
    load = low + (peak - low) * shape * np.where(w.weekend, 0.93, 1.0) * weather
    return load + world.wander(w, s, HOUR, 1.2) + world.sensor_noise(w, s, 0.6)


def _counts(world: World, w: Window, s: Series, mean: np.ndarray) -> np.ndarray:
    """Calls per hour around `mean`, with the spread of a count (about its square root)."""
    mean = mean * (1.0 + world.wander(w, s, 2 * HOUR, 0.12))
    return mean + 0.5 * np.sqrt(np.clip(mean, 0.0, None)) * world.sensor_noise(w, s, 1.0)


def _calls_12345(world: World, w: Window, s: Series) -> np.ndarray:
    """Citizen hotline: office-hours demand with late-morning and afternoon peaks, more in storms."""
    h = w.hour
    peaks = 0.75 + 0.25 * np.maximum(bump(h, 9.8, 1.3), bump(h, 14.8, 1.6))
    shape = 0.08 + 0.92 * active(h, 8.0, 21.0) * peaks * np.where(w.weekend, 0.75, 1.0)
    storm = 1.6 * (0.5 + s.place.people) * world.recent_rain(w, s.place, 60.0)
    return _counts(world, w, s, (10.0 + 60.0 * s.place.people) * shape + storm)


def _calls_110(world: World, w: Window, s: Series) -> np.ndarray:
    """Police calls: steady by day, peaking late evening, busier on Friday and Saturday nights."""
    h = w.hour
    shape = 0.25 + 0.35 * active(h, 7.0, 23.0) + 0.4 * bump(h, 21.0, 2.5)
    party = 1.0 + 0.15 * ((w.weekday == 4) | (w.weekday == 5)) * active(h, 18.0, 27.0)
    return _counts(world, w, s, (6.0 + 30.0 * s.place.people) * shape * party)


def _rainfall(world: World, w: Window, s: Series) -> np.ndarray:
    return world.rain(w, s.place, w.ts)


def hall_open(w: Window) -> np.ndarray:
    """Government service halls: weekdays 8:30-12:00 and 13:30-17:00 local time."""
    h = w.hour
    return ~w.weekend & (((h >= 8.5) & (h < 12.0)) | ((h >= 13.5) & (h < 17.0)))


def _hall_wait(world: World, w: Window, s: Series) -> np.ndarray:
    base, rush = world.traits(s, 2)
    h = w.hour
    queue = (8.0 + 5.0 * rush) * np.maximum(bump(h, 10.0, 1.0), 0.85 * bump(h, 14.8, 1.1))
    monday = 3.0 * (w.weekday == 0)
    wait = 4.0 + 2.0 * base + queue + monday + world.wander(w, s, HOUR, 1.5)
    return np.clip(wait + world.sensor_noise(w, s, 1.0), 0.0, None)


def _er_wait(world: World, w: Window, s: Series) -> np.ndarray:
    (size,) = world.traits(s, 1)
    h = w.hour
    wait = 14.0 + 8.0 * size + 8.0 * bump(h, 20.5, 3.0) + 5.0 * bump(h, 10.0, 2.0) + 3.0 * w.weekend
    return wait + world.wander(w, s, 1.5 * HOUR, 2.0) + world.sensor_noise(w, s, 1.5)


Model = Callable[[World, Window, Series], np.ndarray]


@dataclass(frozen=True)
class Spec:
    """How an indicator is simulated: its model, how prone it is to incidents, when it reports."""

    model: Model
    incident_weight: float = 1.0
    open_hours: Callable[[Window], np.ndarray] | None = None


# Rain and rivers are driven by the storms only; waterlogging rarely appears without rain (a burst
# main); hall queues only exist while the hall is open.
MODELS: dict[str, Spec] = {
    "traffic.tpi": Spec(_tpi),
    "traffic.road_speed": Spec(_road_speed),
    "traffic.parking_occupancy": Spec(_parking),
    "env.aqi": Spec(_aqi),
    "env.pm25": Spec(_pm25),
    "env.noise": Spec(_noise),
    "water.river_level": Spec(_river_level, incident_weight=0.0),
    "water.waterlogging_depth": Spec(_waterlogging, incident_weight=0.3),
    "energy.load_rate": Spec(_load_rate),
    "hotline.calls_12345": Spec(_calls_12345),
    "safety.calls_110": Spec(_calls_110),
    "weather.rainfall": Spec(_rainfall, incident_weight=0.0),
    "gov.hall_wait": Spec(_hall_wait, open_hours=hall_open),
    "health.er_wait": Spec(_er_wait),
}


# --- incidents and glitches ---------------------------------------------------------------------


def incident_target(indicator: Indicator, level_draw: float, depth: float) -> tuple[float, float]:
    """The warning limit an incident crosses and how far past it goes, mostly blue or yellow."""
    thresholds = indicator.thresholds
    assert thresholds is not None
    limits = thresholds.limits()
    odds = np.array([LEVEL_ODDS[severity - 1] for severity, _ in limits])
    pick = int(np.searchsorted(np.cumsum(odds / odds.sum()), level_draw, side="right"))
    pick = min(pick, len(limits) - 1)
    limit = limits[pick][1]
    if pick + 1 < len(limits):
        beyond = limits[pick + 1][1]
    else:  # past the worst level: about one more level's step, within the physical bounds
        step = limit - limits[pick - 1][1] if pick else 0.2 * limit
        low, high = indicator.bounds
        beyond = min(max(limit + step, low), high)
    return limit, (0.15 + 0.6 * depth) * (beyond - limit)


def apply_incidents(series: Series, w: Window, values: np.ndarray, rate: float) -> np.ndarray:
    """Push the series past a warning limit for 15-90 minutes, ramping up and down.

    At most one incident starts per slot, decided by hashing (series, slot), so it is the same
    whatever the window; slots just before the window are included for incidents still running.
    """
    thresholds = series.indicator.thresholds
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
        ramp = np.clip(np.minimum(w.ts - start, start + duration - w.ts) / (0.25 * duration), 0, 1)
        if not ramp.any():
            continue
        limit, past = incident_target(series.indicator, level, depth)
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


# --- the adapter --------------------------------------------------------------------------------


class Options(base.Options):
    """The simulator's settings; the defaults give a lively but believable demo city."""

    seed: int = 20261123
    step: float = Field(default=300.0, description="seconds between readings of each series")
    incident_rate: float = Field(
        default=1.2, ge=0, le=8, description="incidents per series per day (before weighting)"
    )
    glitch_rate: float = Field(default=0.0005, ge=0, le=1, description="share of malformed records")
    indicators: list[str] | None = Field(default=None, description="simulate only these keys")

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
        self.world = World(options.seed, context.city)
        self.known_entities = context.city.entity_codes()
        self.series = _all_series(options, context, self.world)

    def fetch(self, since: str | None, until: datetime) -> Batch:
        """One record per series per bucket in (since, until]; since=None gives the latest bucket."""
        ts = self._buckets(since, until)
        if not ts.size:
            return Batch([], since)
        times = [datetime.fromtimestamp(t, UTC) for t in ts.tolist()]
        isos = [t.isoformat() for t in times]
        window = self._window(ts, times)
        records: list[Record] = []
        for series in self.series:
            records.extend(self._records(series, window, times, isos))
        return Batch(records, isos[-1])

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
            storms=self.world.storms_for(ts),
        )

    def _values(self, series: Series, w: Window) -> np.ndarray:
        """The series' readings as the sensor reports them: model, incidents, rounding, bounds."""
        spec = MODELS[series.indicator.key]
        values = spec.model(self.world, w, series)
        rate = self.options.incident_rate * spec.incident_weight
        values = apply_incidents(series, w, values, rate)
        if spec.open_hours is not None:
            values = np.where(spec.open_hours(w), values, 0.0)
        low, high = series.indicator.bounds
        return np.clip(np.round(values, series.indicator.decimals), low, high)

    def _records(self, series: Series, w: Window, times: list[datetime], isos: list[str]) -> list[Record]:
        key, entity, prefix = series.indicator.key, series.entity, series.raw_prefix
        values = self._values(series, w)
        records = [
            Record(key, entity, t, v, f'{prefix}{iso}","value":{v!r}}}')
            for t, iso, v in zip(times, isos, values.tolist(), strict=True)
        ]
        rate = self.options.glitch_rate
        if rate > 0:
            draws = uniform(stable_key(series.key, "glitch"), w.counter)
            for i in np.flatnonzero(draws < rate).tolist():
                bad_entity, bad_value = glitch(series, records[i].value, draws[i] / rate, self.known_entities)
                raw = _raw(key, bad_entity, isos[i], bad_value)
                records[i] = Record(key, bad_entity, times[i], bad_value, raw)
        return records


def _aware(moment: datetime) -> datetime:
    """Watermarks and `until` are UTC; a naive one is read as UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _raw(indicator: str, entity: str, iso: str, value: float) -> str:
    """The compact JSON text of a record, as a sensor gateway would send it."""
    fields = {"indicator": indicator, "entity": entity, "observed_at": iso, "value": value}
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


def _all_series(options: Options, context: AdapterContext, world: World) -> list[Series]:
    """Every simulated series: per station of the indicator's kinds, per district, or the city."""
    wanted = set(options.indicators) if options.indicators is not None else None
    if wanted is not None:
        unknown = sorted(k for k in wanted if k not in MODELS or k not in context.catalog)
        if unknown:
            known = ", ".join(k for k in MODELS if k in context.catalog)
            raise ValueError(f"the simulator cannot simulate {unknown} (it simulates: {known})")
    series = []
    for indicator in context.catalog:
        if indicator.key not in MODELS or (wanted is not None and indicator.key not in wanted):
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
