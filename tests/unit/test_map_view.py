"""/map's views: the district panel, the indicator picker under a clearance, station overlays per
domain, alert markers per place, and the heat cells."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callbacks.map_views import (
    alert_layer,
    heat_view,
    indicator_choices,
    mappable_keys,
    panel_view,
    pick_indicator,
    places,
    station_layers,
)
from core.city import load_city
from core.density import grid_over
from core.i18n import t
from core.levels import STALE_COLOUR
from core.settings import DEFAULT_CONFIG, load_settings
from indicators.catalog import load_catalog
from layouts.map_page import ChoroplethView, panel_body, selected_hideout
from layouts.maps import level_legend
from store.queries import AlertRow, EntityValue

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
CATALOG = load_catalog()
SETTINGS = load_settings(DEFAULT_CONFIG)
CITY = load_city(SETTINGS.city.boundaries, SETTINGS.city.stations)
BINHU = next(r for r in CITY.districts if r.code == "320211")


def fresh(value: float, severity: int = 0, age: timedelta = timedelta(minutes=2)) -> EntityValue:
    return EntityValue("320211", value, NOW - age, severity)


def test_the_panel_lists_each_indicator_with_a_value_by_domain_in_catalog_order():
    values = {
        "hotline.calls_12345": fresh(87.4),
        "env.pm25": fresh(118.25, severity=3),
        "env.aqi": fresh(152.0, severity=2),
        "traffic.tpi": fresh(6.3, severity=1),
        "weather.rainfall": fresh(0.0),
        "safety.fire_calls": EntityValue("320211", None, None, 0),
    }
    panel = panel_view(CATALOG, BINHU, values, "en", NOW)
    assert panel.code == "320211" and panel.name == BINHU.name.en
    labels = [g.label for g in panel.groups]
    assert labels == ["Traffic", "Environment", "City management", "Emergency & weather"]
    environment = panel.groups[1].signs
    assert [s.key for s in environment] == ["env.aqi", "env.pm25"]  # catalog order, not value order
    aqi, pm25 = environment
    assert (aqi.name, aqi.value_text, aqi.severity) == (CATALOG["env.aqi"].name.en, "152", 2)
    assert (pm25.value_text, pm25.unit, pm25.severity) == ("118", CATALOG["env.pm25"].unit, 3)
    assert aqi.href == "/indicators/env.aqi?region=320211"
    assert all(s.delayed_text is None for g in panel.groups for s in g.signs)
    keys = [s.key for g in panel.groups for s in g.signs]
    assert "safety.fire_calls" not in keys  # no value, no row
    assert panel.groups[3].signs[0].value_text == "0.0"  # zero is a value


def test_the_panel_flags_old_values_and_speaks_the_ui_language():
    panel = panel_view(CATALOG, BINHU, {"env.aqi": fresh(80, age=timedelta(minutes=47))}, "zh-CN", NOW)
    sign = panel.groups[0].signs[0]
    assert panel.name == BINHU.name.zh and panel.groups[0].label == "生态环境"
    assert sign.name == CATALOG["env.aqi"].name.zh
    assert sign.delayed_text == "数据延迟 47 分钟"


def test_an_empty_panel_says_so():
    panel = panel_view(CATALOG, BINHU, {}, "en", NOW)
    assert panel.groups == ()
    assert "No indicator" in str(panel_body(panel, "en")[0].children)


def test_the_picker_offers_what_the_clearance_may_see_with_values_per_district():
    public = mappable_keys(CATALOG, ("public",))
    everything = mappable_keys(CATALOG, ("internal", "public", "restricted"))
    assert "env.aqi" in public and "hotline.calls_12345" in public
    assert "safety.calls_110" not in public and "safety.calls_110" in everything  # internal
    assert "safety.crowd_density" not in public and "energy.load_rate" not in public
    assert "index.city" not in everything and "hotline.answer_rate" not in everything  # city-wide only
    assert all(CATALOG[k].level in ("district", "station") for k in everything)


def test_the_picker_groups_indicators_by_domain_in_the_ui_language():
    keys = ["env.pm25", "traffic.tpi", "env.aqi", "hotline.calls_12345"]
    groups = indicator_choices(CATALOG, keys, "zh-CN")
    assert [g.label for g in groups] == ["交通", "生态环境", "城市管理"]
    assert [c.value for c in groups[1].choices] == ["env.aqi", "env.pm25"]
    assert groups[1].choices[0].label == CATALOG["env.aqi"].name.zh


def test_the_address_picks_the_indicator_only_if_the_requester_may_map_it():
    keys = mappable_keys(CATALOG, ("public",))
    assert pick_indicator("traffic.tpi", keys, "env.aqi") == "traffic.tpi"
    assert pick_indicator("safety.calls_110", keys, "env.aqi") == "env.aqi"  # internal: refused
    assert pick_indicator("no.such", keys, "env.aqi") == "env.aqi"
    assert pick_indicator(None, keys, "safety.calls_110") == keys[0]
    assert pick_indicator(None, [], "env.aqi") is None


def station_feature(code: str, kind: str, severity: int = 0) -> dict:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [120.3, 31.5]},
        "properties": {"code": code, "kind": kind, "severity": severity, "colour": "#000", "text": code},
    }


def test_stations_make_one_overlay_per_domain_and_cluster_above_the_threshold():
    air = [s.code for s in CITY.stations_of("air")]
    road = [s.code for s in CITY.stations_of("road")]
    hall = [s.code for s in CITY.stations_of("hall")]
    features = {
        "type": "FeatureCollection",
        "features": [station_feature(c, "air") for c in air]
        + [station_feature(c, "road") for c in road]
        + [station_feature(c, "hall") for c in hall],
    }
    layers = station_layers(CITY, features, {"air", "road"}, cluster_above=len(air), lang="en")
    assert [layer.domain for layer in layers] == ["traffic", "environment"]  # hall's kind not visible
    traffic, environment = layers
    assert traffic.name == "Stations · Traffic"
    assert len(traffic.features["features"]) == len(road) and traffic.cluster == (len(road) > len(air))
    assert len(environment.features["features"]) == len(air) and environment.cluster is False


def alert(entity: str, severity: int, minutes: int, id_: int) -> AlertRow:
    return AlertRow(
        id=id_,
        indicator="env.aqi",
        entity=entity,
        state="active",
        severity=severity,
        value=1.0,
        opened_at=NOW - timedelta(minutes=minutes),
        updated_at=NOW,
        explanation_zh=f"预警 {id_}",
        explanation_en=f"warning {id_}",
    )


def test_alerts_make_one_marker_per_place_at_its_worst_level_and_count_the_unplaced():
    station = CITY.stations[0]
    rows = [
        alert(station.code, 1, 30, 1),
        alert(station.code, 3, 10, 2),
        alert("320211", 2, 5, 3),
        alert("320200", 4, 1, 4),  # the city as a whole: no place on the map
    ]
    rows += [alert("320211", 1, 60 + i, 10 + i) for i in range(5)]
    layer = alert_layer(rows, places(CITY), "en")
    assert layer.unplaced == 1
    markers = {f["properties"]["entity"]: f for f in layer.features["features"]}
    assert set(markers) == {station.code, "320211"}
    at_station = markers[station.code]
    assert at_station["geometry"]["coordinates"] == [station.lon, station.lat]
    assert at_station["properties"]["severity"] == 3 and at_station["properties"]["roman"] == "II"
    assert at_station["properties"]["text"].splitlines() == ["warning 2", "warning 1"]
    binhu = markers["320211"]["properties"]
    assert binhu["count"] == 6 and binhu["text"].splitlines()[0] == "warning 3"
    assert binhu["text"].splitlines()[-1] == "… and 2 more"
    assert markers["320211"]["geometry"]["coordinates"] == list(BINHU.center)


GRID = grid_over(31.11, 119.51, 31.99, 120.6, long_side_cells=40, margin_km=8)


def test_heat_cells_come_from_placed_positive_values_and_peak_at_one():
    values = {"320211": 120.0, "320205": 40.0, "320200": 500.0, "320213": 0.0, "unknown": 9.0}
    heat = heat_view("12345 hotline calls", "calls/h", False, values, places(CITY), GRID, 4, "en")
    shares = [f["properties"]["share"] for f in heat.features["features"]]
    assert max(shares) == 1 and min(shares) >= 0.04
    assert "4 km" in heat.what and "calls/h" in heat.what and "mean of the last hour" in heat.what
    assert heat.peak_text.endswith("calls/h per km²")
    only_binhu = heat_view("x", "calls/h", False, {"320211": 120.0}, places(CITY), GRID, 4, "en")
    hottest = max(only_binhu.features["features"], key=lambda f: f["properties"]["share"])
    (x, y), (width, height) = hottest["geometry"]["coordinates"], only_binhu.cell
    assert (width, height) == (GRID.cell_lon, GRID.cell_lat)
    lon, lat = BINHU.center
    assert abs(lon - x) <= width / 2 + 1e-5 and abs(lat - y) <= height / 2 + 1e-5  # its own cell
    # the city-wide value (320200) and the unplaced entity add nothing: the peak is Binhu's alone
    assert (
        only_binhu.peak_text
        == heat_view(
            "x",
            "calls/h",
            False,
            {"320211": 120.0, "320200": 500.0, "unknown": 9.0},
            places(CITY),
            GRID,
            4,
            "en",
        ).peak_text
    )


def test_no_values_no_heat_cells():
    heat = heat_view("x", "calls/h", True, {}, places(CITY), GRID, 4, "zh-CN")
    assert heat.features["features"] == []
    assert "站点" in heat.what


@pytest.mark.parametrize("district", [None, "320211"])
def test_the_open_district_rides_on_the_choropleth_hideout(district):
    colours = {"districts": {"320211": {"colour": "#fff"}}, "stale": "#6b7280"}
    choropleth = ChoroplethView("env.aqi", "AQI", "", colours)
    hideout = selected_hideout(choropleth, district)
    assert hideout["selected"] == district and hideout["districts"] == choropleth.hideout["districts"]
    assert "selected" not in choropleth.hideout  # the cached view is not changed
    assert selected_hideout(None, district)["districts"] == {}


def test_every_map_legend_names_the_grey_of_no_data():
    """The map page and the detail page share one legend; both grey a district with no fresh value."""
    entries = level_legend("en").children
    assert len(entries) == 6  # normal, IV blue .. I red, no data
    swatch, text = entries[-1].children
    assert swatch.style["background"] == STALE_COLOUR and text == t("map.legend.no_data", "en")
