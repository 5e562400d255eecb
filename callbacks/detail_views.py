"""The detail page's view: one indicator over a window at one place, read through store/history.py
(the series, the previous period, the same period last year, the breakdown) and turned into the
plain DetailView the layout draws and the export writes (no callbacks here)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from zoneinfo import ZoneInfo

from callbacks.detail_state import DetailState, Window, last_year_window
from callbacks.map_frame import map_frame
from callbacks.views import station_feature
from core.i18n import t
from core.levels import STALE_COLOUR, level
from indicators.catalog import Indicator
from indicators.period_stats import change, level_zones, period_stats
from layouts.components import format_value
from layouts.indicator_detail import (
    LINE_COLOUR,
    BarView,
    Crumb,
    DetailView,
    Line,
    SeriesView,
    wall_clock_text,
)
from store import history
from web.runtime import WebRuntime

STEPS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}


def breakdown_of(indicator: Indicator, state: DetailState) -> str | None:
    """What the bars list: a district's stations once one is chosen (for station indicators),
    else the districts; nothing for an indicator measured only city-wide."""
    if indicator.level == "city":
        return None
    return "station" if state.region and indicator.level == "station" else "district"


def bucket_step(resolution: str, indicator: Indicator) -> timedelta:
    return STEPS.get(resolution, timedelta(seconds=indicator.cadence))


def _shifted(buckets: list[history.Bucket], by: timedelta, zone: ZoneInfo) -> Line:
    times = tuple(b.at + by for b in buckets)
    return Line(times, tuple(b.value for b in buckets), wall_clock_text(times, zone))


def _colour(indicator: Indicator, value: float) -> tuple[int, str]:
    """The level a breakdown value reaches, and its colour (the accent where there are no levels)."""
    if indicator.thresholds is None:
        return 0, LINE_COLOUR
    severity = indicator.thresholds.severity(value)
    return severity, level(severity).colour


def worst_first(indicator: Indicator, values: Mapping[str, float]) -> list[str]:
    """Codes ordered from the worst value to the best, ties by code (stable for tests and eyes)."""
    sign = -1 if indicator.higher_is_worse else 1
    return sorted(values, key=lambda code: (sign * values[code], code))


class DetailViews:
    """Builds the views of one deployment; the static map pieces are computed once."""

    def __init__(self, runtime: WebRuntime):
        self.runtime = runtime
        self.frame = map_frame(runtime)
        self.districts = {d.code: d for d in runtime.city.districts}
        self.stations = {s.code: s for s in runtime.city.stations}
        self.district_features = {f["properties"]["code"]: f for f in self.frame.districts["features"]}

    def build(
        self, indicator: Indicator, state: DetailState, window: Window, version: int, lang: str
    ) -> DetailView:
        runtime, engine, key = self.runtime, self.runtime.engine, indicator.key
        zone = runtime.settings.tz
        resolution = history.pick_resolution(window.start, window.end)
        step = bucket_step(resolution, indicator)
        selection = {
            "entities": [state.entity] if state.entity else None,
            "region": state.region if state.region and not state.entity else None,
            "resolution": resolution,
        }
        buckets = history.indicator_history(engine, key, window.start, window.end, **selection)
        span = window.end - window.start
        previous = history.indicator_history(engine, key, window.start - span, window.start, **selection)
        year = last_year_window(window, zone)
        last_year = history.indicator_history(engine, key, year.start, year.end, **selection)
        stats = period_stats(buckets, indicator.thresholds, step, window.end)
        previous_mean = period_stats(previous, None, step, window.start).mean
        last_year_mean = period_stats(last_year, None, step, year.end).mean
        by_district = (
            history.breakdown(engine, key, window.start, window.end) if indicator.level != "city" else {}
        )
        by_station = (
            history.breakdown(engine, key, window.start, window.end, region=state.region)
            if state.region and indicator.level == "station"
            else {}
        )
        breakdown_scope = breakdown_of(indicator, state)
        return DetailView(
            key=key,
            name=indicator.name.get(lang),
            unit=indicator.unit_in(lang),
            decimals=indicator.decimals,
            zone=runtime.settings.city.timezone,
            range_name=state.range,
            start=window.start,
            end=window.end,
            resolution=resolution,
            step_seconds=step.total_seconds(),
            scope="station" if state.entity else ("district" if state.region else "city"),
            scope_name=self._scope_name(state, lang),
            place=state.entity or state.region,
            crumbs=self._crumbs(state, lang),
            series=SeriesView(
                tuple(b.at for b in buckets),
                tuple(b.value for b in buckets),
                tuple(b.low for b in buckets),
                tuple(b.high for b in buckets),
                tuple(b.count for b in buckets),
                wall_clock_text([b.at for b in buckets], zone),
            ),
            previous=_shifted(previous, span, zone),
            last_year=_shifted(last_year, window.start - year.start, zone),
            limits=indicator.thresholds.limits() if indicator.thresholds else (),
            zones=level_zones(indicator.thresholds, indicator.bounds) if indicator.thresholds else (),
            bounds=indicator.bounds,
            stats=stats,
            vs_previous=change(stats.mean, previous_mean),
            vs_last_year=change(stats.mean, last_year_mean),
            breakdown_scope=breakdown_scope,
            breakdown_title=self._breakdown_title(breakdown_scope, state, lang),
            bars=self._bars(indicator, breakdown_scope, state, by_district, by_station, lang),
            district_hideout=self._hideout(indicator, by_district, lang),
            stations=self._station_features(indicator, state, by_station, lang),
            focus=self._focus(state),
            map_bounds=self.frame.district_bounds[state.region] if state.region else self.frame.bounds,
            version=version,
        )

    def _scope_name(self, state: DetailState, lang: str) -> str:
        if state.entity:
            return self.stations[state.entity].name.get(lang)
        if state.region:
            return self.districts[state.region].name.get(lang)
        return self.runtime.settings.city.name.get(lang)

    def _crumbs(self, state: DetailState, lang: str) -> tuple[Crumb, ...]:
        trail = [Crumb("city", self.runtime.settings.city.name.get(lang))]
        if state.region:
            trail.append(Crumb("district", self.districts[state.region].name.get(lang)))
        if state.entity:
            trail.append(Crumb("station", self.stations[state.entity].name.get(lang)))
        return tuple(trail)

    def _breakdown_title(self, scope: str | None, state: DetailState, lang: str) -> str:
        if scope == "station":
            return t("detail.breakdown.stations", lang, district=self.districts[state.region].name.get(lang))
        if scope == "district":
            return t("detail.breakdown.districts", lang)
        return t("detail.breakdown.title", lang)

    def _bars(
        self,
        indicator: Indicator,
        scope: str | None,
        state: DetailState,
        by_district: dict[str, float],
        by_station: dict[str, float],
        lang: str,
    ) -> tuple[BarView, ...]:
        if scope == "station":
            names = {code: s.name.get(lang) for code, s in self.stations.items() if code in by_station}
            values, chosen = by_station, state.entity
        elif scope == "district":
            names = {code: d.name.get(lang) for code, d in self.districts.items() if code in by_district}
            values, chosen = by_district, state.region
        else:
            return ()
        known = {code: values[code] for code in names}
        result = []
        for code in worst_first(indicator, known):
            severity, colour = _colour(indicator, known[code])
            result.append(BarView(code, names[code], known[code], severity, colour, code == chosen))
        return tuple(result)

    def _hideout(self, indicator: Indicator, values: dict[str, float], lang: str) -> dict:
        """Colours per district as the shared districtStyle reads them (see callbacks.views)."""
        styled = {}
        for code, region in self.districts.items():
            value = values.get(code)
            severity, colour = _colour(indicator, value) if value is not None else (0, STALE_COLOUR)
            shown = format_value(value, indicator.decimals)
            text = f"{region.name.get(lang)}: {shown} {indicator.unit_in(lang)}"
            styled[code] = {"colour": colour, "severity": severity, "text": text.strip()}
        return {"districts": styled, "stale": STALE_COLOUR}

    def _station_features(
        self, indicator: Indicator, state: DetailState, values: dict[str, float], lang: str
    ) -> dict:
        """The district's stations of this indicator as markers (none at city scope)."""
        features = []
        if state.region and indicator.level == "station":
            for station in self.runtime.city.stations:
                if station.region_code != state.region or station.kind not in indicator.station_kinds:
                    continue
                value = values.get(station.code)
                severity, colour = _colour(indicator, value) if value is not None else (0, STALE_COLOUR)
                shown = format_value(value, indicator.decimals)
                text = f"{station.name.get(lang)}: {shown} {indicator.unit_in(lang)}"
                features.append(station_feature(station, severity, colour, text))
        return {"type": "FeatureCollection", "features": features}

    def _focus(self, state: DetailState) -> dict:
        focus: dict = {"district": None, "station": None}
        if state.region:
            focus["district"] = {
                "type": "FeatureCollection",
                "features": [self.district_features[state.region]],
            }
        if state.entity:
            station = self.stations[state.entity]
            focus["station"] = (station.lon, station.lat)
        return focus
