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


def pressure(indicator: Indicator, value: float) -> float | None:
    """0 at the normal anchor, n at the limit of level n, linear in between, capped at 4."""
    thresholds = indicator.thresholds
    if thresholds is None:
        return None
    above = thresholds.direction == "above"
    anchor = normal_anchor(indicator)
    knots = [(0.0, anchor)] + [(float(s), limit) for s, limit in thresholds.limits()]
    distance = (lambda v: v - anchor) if above else (lambda v: anchor - v)
    here = distance(value)
    if here <= 0:
        return 0.0
    for (p_low, v_low), (p_high, v_high) in zip(knots, knots[1:], strict=False):
        if here <= distance(v_high):
            span = distance(v_high) - distance(v_low)
            return p_low + (p_high - p_low) * (here - distance(v_low)) / span if span else p_high
    return MAX_PRESSURE if len(knots) == 1 else min(MAX_PRESSURE, knots[-1][0])


def sub_indices(values: Iterable[tuple[Indicator, float]]) -> dict[str, float]:
    """Per-domain sub-index (0-100, 100 = every indicator at its normal anchor)."""
    pressures: dict[str, list[float]] = defaultdict(list)
    for indicator, value in values:
        if is_composite(indicator.key):
            continue
        found = pressure(indicator, value)
        if found is not None:
            pressures[indicator.domain].append(found)
    return {domain: 100 - 25 * sum(p) / len(p) for domain, p in pressures.items() if p}


def city_index(subs: Mapping[str, float], weights: Mapping[str, float]) -> float | None:
    """The weighted mean of the domains present (a domain with weight 0 is left out)."""
    used = {d: weights.get(d, 1.0) for d in subs if weights.get(d, 1.0) > 0}
    total = sum(used.values())
    return sum(subs[d] * w for d, w in used.items()) / total if total else None


def index_values(values: Iterable[tuple[Indicator, float]], weights: Mapping[str, float]) -> dict[str, float]:
    """The composite readings: `index.<domain>` for each domain with data, and `index.city`."""
    subs = sub_indices(values)
    found = {domain_key(d): round(v, 2) for d, v in subs.items() if d in DOMAINS}
    city = city_index(subs, weights)
    if city is not None:
        found[CITY_KEY] = round(city, 2)
    return found
