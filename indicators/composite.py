"""The City Operations Index (城市运行综合指数), 0-100, and its per-domain sub-indices.

Each indicator's latest value becomes a "pressure" from 0 (at its normal anchor) through 1 (its
blue limit) ... 4 (its red limit), linear in between. The anchor is the catalog's `normal` value,
else the mildest limit mirrored by the span of the levels, kept inside the physical bounds (a
river's normal is not its riverbed, a visibility's normal is not 50 km). A
domain's sub-index is 100 - 25 x the mean pressure of its series; the city index is the
weighted mean of the sub-indices. Indicators without thresholds (anomaly-only) do not count.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

from indicators.catalog import DOMAINS, Indicator

CITY_KEY = "index.city"
PREFIX = "index."
MAX_PRESSURE = 4.0


def is_composite(key: str) -> bool:
    return key.startswith(PREFIX)


def domain_key(domain: str) -> str:
    return f"{PREFIX}{domain}"


def normal_anchor(indicator: Indicator) -> float:
    if indicator.normal is not None:
        return indicator.normal
    limits = [limit for _, limit in indicator.thresholds.limits()]
    span = abs(limits[-1] - limits[0]) or abs(limits[0]) or 1.0
    low, high = indicator.bounds
    if indicator.thresholds.direction == "above":
        return max(low, limits[0] - span)
    return min(high, limits[0] + span)


class PressureCurve:
    """An indicator's pressure as a function of its value, its knots worked out once: the index
    is recomputed for every 5-minute bucket of a batch, over every series of the city."""

    def __init__(self, indicator: Indicator):
        thresholds = indicator.thresholds
        self.above = thresholds.direction == "above"
        self.anchor = anchor = normal_anchor(indicator)
        knots = [(0.0, anchor)] + [(float(s), limit) for s, limit in thresholds.limits()]
        self.last = MAX_PRESSURE if len(knots) == 1 else min(MAX_PRESSURE, knots[-1][0])
        # (pressure and distance from the anchor at both ends of each piece, and its length)
        self.pieces = []
        for (p_low, v_low), (p_high, v_high) in zip(knots, knots[1:], strict=False):
            d_low, d_high = self.distance(v_low), self.distance(v_high)
            self.pieces.append((p_low, p_high, d_low, d_high, d_high - d_low))

    def distance(self, value: float) -> float:
        return value - self.anchor if self.above else self.anchor - value

    def __call__(self, value: float) -> float:
        here = value - self.anchor if self.above else self.anchor - value
        if here <= 0:
            return 0.0
        for p_low, p_high, d_low, d_high, span in self.pieces:
            if here <= d_high:
                return p_low + (p_high - p_low) * (here - d_low) / span if span else p_high
        return self.last


def pressure(indicator: Indicator, value: float) -> float | None:
    """0 at the normal anchor, n at the limit of level n, linear in between, capped at 4."""
    if indicator.thresholds is None:
        return None
    return PressureCurve(indicator)(value)


def sub_indices(values: Iterable[tuple[Indicator, float]]) -> dict[str, float]:
    """Per-domain sub-index (0-100, 100 = every indicator at its normal anchor)."""
    pressures: dict[str, list[float]] = defaultdict(list)
    for indicator, value in values:
        if is_composite(indicator.key):
            continue
        found = pressure(indicator, value)
        if found is not None:
            pressures[indicator.domain].append(found)
    return _domain_means(pressures)


def _domain_means(pressures: Mapping[str, list[float]]) -> dict[str, float]:
    return {domain: 100 - 25 * sum(p) / len(p) for domain, p in pressures.items() if p}


def city_index(subs: Mapping[str, float], weights: Mapping[str, float]) -> float | None:
    """The weighted mean of the domains present (a domain with weight 0 is left out)."""
    used = {d: weights.get(d, 1.0) for d in subs if weights.get(d, 1.0) > 0}
    total = sum(used.values())
    return sum(subs[d] * w for d, w in used.items()) / total if total else None


def index_values(values: Iterable[tuple[Indicator, float]], weights: Mapping[str, float]) -> dict[str, float]:
    """The composite readings: `index.<domain>` for each domain with data, and `index.city`."""
    return _named(sub_indices(values), weights)


def _named(subs: Mapping[str, float], weights: Mapping[str, float]) -> dict[str, float]:
    found = {domain_key(d): round(v, 2) for d, v in subs.items() if d in DOMAINS}
    city = city_index(subs, weights)
    if city is not None:
        found[CITY_KEY] = round(city, 2)
    return found


class RunningIndex:
    """The index as the series' latest values move, bucket after bucket of a batch.

    Equal to `index_values` over the latest value of every series, in the order the series were
    first set (the same pressures summed in the same order, so the same floats), without
    recomputing every series' pressure for every bucket: a series' pressure is worked out when its
    value is set, and a bucket costs one sum per domain.
    """

    def __init__(self, indicators: Iterable[Indicator], weights: Mapping[str, float]):
        self.weights = weights
        self.curves = {
            i.key: (PressureCurve(i), i.domain)
            for i in indicators
            if i.thresholds is not None and not is_composite(i.key)
        }
        # the indicators whose values move the index (those with thresholds)
        self.counting = frozenset(self.curves)
        self.pressures: dict[str, list[float]] = {}
        self.slots: dict[tuple[str, str], tuple[list[float], int]] = {}

    def set(self, latest: Iterable[tuple[tuple[str, str], float]]) -> None:
        """New latest values of series, ((indicator, entity), value); indicators that do not
        count are ignored."""
        curves, slots, pressures = self.curves, self.slots, self.pressures
        for series, value in latest:
            found = curves.get(series[0])
            if found is None:
                continue
            curve, domain = found
            slot = slots.get(series)
            if slot is None:
                domain_pressures = pressures.setdefault(domain, [])
                slots[series] = (domain_pressures, len(domain_pressures))
                domain_pressures.append(curve(value))
            else:
                slot[0][slot[1]] = curve(value)

    def values(self) -> dict[str, float]:
        """The composite readings now (as `index_values`)."""
        return _named(_domain_means(self.pressures), self.weights)
