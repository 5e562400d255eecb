"""/map's reads on both dialects: every indicator of one district, each combined as `by_district`
combines it (stations by the indicator's aggregation, the district's own series as is), and the
map's layers and panel built from the real store under two clearances."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from callbacks.map_frame import map_frame
from callbacks.map_page import build_layers, build_panel, heat_grid
from core.records import ValidReading
from core.timeutil import utcnow
from store import queries
from store.models import Series
from store.readings import upsert_readings
from web.runtime import WebRuntime

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
DISTRICT = "320211"
OTHER = "320205"


def stations(ingest, kind: str, district: str) -> list[str]:
    return [s.code for s in ingest.city.stations if s.kind == kind and s.region_code == district]


def test_district_values_give_every_indicator_of_one_district(ingest):
    air_here, air_there = stations(ingest, "air", DISTRICT), stations(ingest, "air", OTHER)
    road_here = stations(ingest, "road", DISTRICT)
    assert len(air_here) >= 2 and air_there and road_here
    batch = [ValidReading("env.aqi", code, T0, 40.0 + 20 * i) for i, code in enumerate(air_here)]
    batch += [ValidReading("env.aqi", code, T0, 300.0) for code in air_there]
    batch += [ValidReading("env.aqi", air_here[0], T0 - timedelta(hours=1), 999.0)]  # older: not latest
    later = T0 + timedelta(minutes=5)
    batch += [ValidReading("traffic.road_volume", code, later, 100.0) for code in road_here]
    batch += [ValidReading("hotline.calls_12345", DISTRICT, T0, 87.0)]
    batch += [ValidReading("hotline.calls_12345", OTHER, T0, 12.0)]
    batch += [ValidReading("hotline.answer_rate", "320200", T0, 97.0)]  # the city as a whole
    with ingest.sessions() as session:
        upsert_readings(session, batch, "test", ingest.region_of)
        session.execute(
            update(Series)
            .where(Series.indicator_key == "env.aqi", Series.entity == air_here[-1])
            .values(last_severity=3)
        )
        session.commit()
    keys = ["env.aqi", "traffic.road_volume", "hotline.calls_12345", "hotline.answer_rate", "env.pm25"]

    found = queries.district_values(ingest.engine, DISTRICT, keys)

    assert set(found) == {"env.aqi", "traffic.road_volume", "hotline.calls_12345"}
    aqi = found["env.aqi"]
    expected_mean = sum(40.0 + 20 * i for i in range(len(air_here))) / len(air_here)
    assert aqi.code == DISTRICT and aqi.value == pytest.approx(expected_mean)
    assert aqi.severity == 3 and aqi.observed_at == T0
    volume = found["traffic.road_volume"]  # a sum over the district's road segments
    assert volume.value == pytest.approx(100.0 * len(road_here)) and volume.observed_at == later
    assert found["hotline.calls_12345"].value == pytest.approx(87.0)
    for key, value in found.items():
        assert queries.by_district(ingest.engine, key)[DISTRICT] == value  # one combination for both views


def test_district_values_keep_to_the_keys_asked_for(ingest):
    with ingest.sessions() as session:
        reading = ValidReading("hotline.calls_12345", DISTRICT, T0, 5.0)
        upsert_readings(session, [reading], "t", ingest.region_of)
        session.commit()
    assert queries.district_values(ingest.engine, DISTRICT, []) == {}
    assert queries.district_values(ingest.engine, DISTRICT, ["env.aqi"]) == {}
    assert queries.district_values(ingest.engine, "999999", ["hotline.calls_12345"]) == {}
    assert set(queries.district_values(ingest.engine, DISTRICT, {"hotline.calls_12345"})) == {
        "hotline.calls_12345"
    }


def runtime_of(ingest) -> WebRuntime:
    return WebRuntime(ingest.settings, ingest.engine, ingest.city, ingest.catalog, cache=None, version="test")


def test_the_map_layers_and_panel_follow_the_clearance(ingest):
    """Visitors (public) see no internal substations or 110 calls; the heat spreads the last hour's
    12345 calls from the districts that have them."""
    now = utcnow().replace(microsecond=0)
    substation = stations(ingest, "substation", DISTRICT)[0]
    air = stations(ingest, "air", DISTRICT)[0]
    calls = "hotline.calls_12345"
    batch = [ValidReading(calls, DISTRICT, now - timedelta(minutes=m), 90.0 + m) for m in (5, 20, 40)]
    batch += [ValidReading(calls, OTHER, now - timedelta(minutes=10), 30.0)]
    batch += [ValidReading(calls, OTHER, now - timedelta(hours=3), 3000.0)]  # before the last hour
    batch += [ValidReading("energy.load_rate", substation, now - timedelta(minutes=5), 55.0)]
    batch += [ValidReading("env.aqi", air, now - timedelta(minutes=5), 60.0)]
    batch += [ValidReading("safety.calls_110", DISTRICT, now - timedelta(minutes=5), 7.0)]
    with ingest.sessions() as session:
        upsert_readings(session, batch, "test", ingest.region_of)
        session.commit()
    runtime = runtime_of(ingest)
    grid = heat_grid(map_frame(runtime), ingest.settings.map.heatmap_bandwidth_km)

    public = build_layers(runtime, grid, "en", ("public",))
    everything = build_layers(runtime, grid, "en", ("internal", "public", "restricted"))

    assert "energy" not in [layer.domain for layer in public.stations]
    assert "energy" in [layer.domain for layer in everything.stations]
    assert public.heat is not None and public.heat.features["features"]
    hottest = max(public.heat.features["features"], key=lambda f: f["properties"]["share"])
    x, y = hottest["geometry"]["coordinates"]
    lon, lat = next(r.center for r in ingest.city.districts if r.code == DISTRICT)
    # Binhu's 111.7 calls/h outweigh Xishan's 30: the hottest cell is the one around Binhu's centre
    assert abs(lon - x) <= grid.cell_lon / 2 + 1e-5 and abs(lat - y) <= grid.cell_lat / 2 + 1e-5
    peak = float(public.heat.peak_text.split()[0])
    cell_area = grid.cell_km**2
    assert 0 < peak * cell_area < 111.7  # the densest cell holds part of Binhu's hour, never more

    visitor = build_panel(runtime, DISTRICT, "en", ("public",), now)
    officer = build_panel(runtime, DISTRICT, "en", ("internal", "public", "restricted"), now)
    keys = {s.key for g in visitor.groups for s in g.signs}
    assert {"hotline.calls_12345", "env.aqi"} <= keys and "safety.calls_110" not in keys
    assert "safety.calls_110" in {s.key for g in officer.groups for s in g.signs}
    assert build_panel(runtime, "999999", "en", ("public",), now) is None
