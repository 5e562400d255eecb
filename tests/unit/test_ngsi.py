"""The NGSI adapter: every Smart Data Models example in its four forms, units, times, places,
notifications, export files and the modification-time watermark.

The examples are shared test data outside the repository (../shared/testdata/sdm); the tests that
read them skip with the reason when the folder is absent (a clone elsewhere).
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.city import load_city
from core.geo import wgs84_to_gcj02
from core.timeutil import as_utc
from datasources.base import Adapter, AdapterContext
from datasources.ngsi import NgsiAdapter, Options, changed_since
from datasources.ngsi_models import UNITS, UnitError, convert, unit_symbol
from datasources.ngsi_payload import NgsiError, period_of
from datasources.registry import option_problems
from indicators.catalog import load_catalog
from indicators.validation import Validator

REPO = Path(__file__).resolve().parents[2]
SDM = REPO.parent / "shared" / "testdata" / "sdm"
ZONE = ZoneInfo("Asia/Shanghai")

FORMS = {
    "v2-keyvalues": "example.json",
    "v2-normalized": "example-normalized.json",
    "ld-keyvalues": "example.jsonld",
    "ld-normalized": "example-normalized.jsonld",
}
MODELS = (
    "AirQualityObserved",
    "NoiseLevelObserved",
    "OffStreetParking",
    "ParkingSpot",
    "TrafficFlowObserved",
    "WaterQualityObserved",
    "WeatherObserved",
)
# The examples' v2 ids (their LD ids are urn:ngsi-ld:<Type>:<v2 id>) and the Wuxi station each is
# read as; the examples lie in Spain and Portugal, so the tests map them.
IDS = {
    "AirQualityObserved": ["Madrid-AmbientObserved-28079004-2016-03-15T11:00:00"],
    "NoiseLevelObserved": ["Vitoria-NoiseLevelObserved-2016-12-28T11:00:00_2016-12-28T12:00:00"],
    "OffStreetParking": ["porto-ParkingLot-23889"],
    "ParkingSpot": ["santander:daoiz_velarde_1_5:3"],
    "TrafficFlowObserved": ["TrafficFlowObserved-Valladolid-osm-60821110"],
    "WaterQualityObserved": ["waterqualityobserved:Sevilla:D1"],
    # The v2 normalized example has an id of its own.
    "WeatherObserved": [
        "Spain-WeatherObserved-Valladolid-2016-11-30T07:00:00.00Z",
        "Valladolid.2016-11-30T07-00-00.00Z",
    ],
}
PLACES = {
    "AirQualityObserved": "1188A",  # Xuelang air station, Binhu district 320211
    "NoiseLevelObserved": "NS01",
    "OffStreetParking": "PK01",
    "ParkingSpot": "PK02",
    "TrafficFlowObserved": "RD01",
    "WaterQualityObserved": "RV01",
    "WeatherObserved": "RV02",  # Huishan river gauge, Huishan district 320206
}
EXAMPLE_MAP = {entity_id: PLACES[model] for model, ids in IDS.items() for entity_id in ids}

T_AIR = "2016-03-15T03:00:00+00:00"  # "2016-03-15T11:00:00" has no zone: Wuxi time
T_NOISE = "2016-12-28T12:00:00+00:00"  # dateObservedTo, the end of the hour
T_PARKING = "2018-09-21T12:00:00+00:00"  # occupancyModified, not the later observationDateTime
T_TRAFFIC = "2016-12-07T11:15:00+00:00"  # dateObservedTo, the end of the 5 minutes
T_WEATHER = "2016-11-30T07:00:00+00:00"

# What all four forms of each example say alike.
AGREED = {
    "AirQualityObserved": {
        ("weather.temperature", "320211", T_AIR, 12.2),
        ("weather.wind_speed", "320211", T_AIR, 0.64),
    },
    "NoiseLevelObserved": {("env.noise", "NS01", T_NOISE, 67.8)},
    "OffStreetParking": {("traffic.parking_occupancy", "PK01", T_PARKING, 68.0)},
    "ParkingSpot": set(),  # a spot's free/occupied status has no indicator
    "TrafficFlowObserved": {
        ("traffic.road_volume", "RD01", T_TRAFFIC, 2364.0),  # 197 vehicles in 5 minutes
        ("traffic.road_speed", "RD01", T_TRAFFIC, 52.6),
    },
    "WaterQualityObserved": set(),  # no O2 or NH4 in the example, nothing else has an indicator
    "WeatherObserved": {
        ("weather.temperature", "320206", T_WEATHER, 3.3),
        ("weather.wind_speed", "320206", T_WEATHER, 2.0),
        ("water.river_level", "RV02", T_WEATHER, 0.5),  # streamGauge 50 cm
    },
}
NO2 = ("env.no2", "1188A", T_AIR, 69.0)
DRY_AIR = ("weather.rainfall", "320211", T_AIR, 0.0)
DRY_WEATHER = ("weather.rainfall", "320206", T_WEATHER, 0.0)
# Where the published forms disagree: each form's own readings on top of AGREED.
OWN = {
    # The v2 key-values example names the NO2 value `co2`; CO2 has no indicator, so no env.no2.
    ("AirQualityObserved", "v2-keyvalues"): {DRY_AIR},
    # precipitation is a Boolean (false) here, 0 elsewhere: rejected, see REJECTED.
    ("AirQualityObserved", "v2-normalized"): {NO2},
    ("AirQualityObserved", "ld-keyvalues"): {NO2, DRY_AIR},
    ("AirQualityObserved", "ld-normalized"): {NO2, DRY_AIR},
    ("WeatherObserved", "v2-keyvalues"): {DRY_WEATHER},
    # precipitation 0.1 here, 0 in the other three forms.
    ("WeatherObserved", "v2-normalized"): {("weather.rainfall", "320206", T_WEATHER, 0.1)},
    ("WeatherObserved", "ld-keyvalues"): {DRY_WEATHER},
    ("WeatherObserved", "ld-normalized"): {DRY_WEATHER},
}
REJECTED = {("AirQualityObserved", "v2-normalized"): [("value", "a boolean (False) is not a measurement")]}
# Differences between the forms that map to no indicator, documented here rather than tested:
# AirQualityObserved windDirection 176 / 186 / 180; WaterQualityObserved TKN, As, Ba, Cr... are
# Booleans in the v2 normalized form (numbers elsewhere) and Fe 7.4 vs 0.0; WeatherObserved
# relativeHumidity 0.15 (v2 normalized) vs 1; TrafficFlowObserved's LD normalized dateObserved is
# the start instant "2016-12-07T11:10:00" (no zone) where the others give the interval, which is why
# dateObservedTo (the end, with its zone) is read first; OffStreetParking observationDateTime 2021
# against occupancyModified 2018.


def sdm() -> Path:
    if not SDM.is_dir():
        pytest.skip(f"{SDM} is absent: the Smart Data Models examples are shared test data outside the repo")
    return SDM


def example(model: str, form: str) -> dict:
    return json.loads((sdm() / model / FORMS[form]).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def context() -> AdapterContext:
    city = load_city(REPO / "assets/geo/wuxi_districts.geojson", REPO / "config/cities/wuxi/stations.csv")
    return AdapterContext(city, load_catalog(), ZONE, "ngsi-test")


@pytest.fixture(scope="module")
def validator(context) -> Validator:
    return Validator(context.catalog, context.city.entity_codes(), ZONE)


def make(context: AdapterContext, **options: object) -> NgsiAdapter:
    options.setdefault("file", "unused.json")
    return NgsiAdapter(Options.model_validate(options), context)


def judged(records, validator) -> tuple[set[tuple], list[tuple[str, str]]]:
    """(indicator, entity, UTC ISO time, value) of the accepted readings; (field, reason) of the rest."""
    accepted, rejected = validator.validate(records)
    readings = {(r.indicator, r.entity, r.observed_at.isoformat(), round(r.value, 6)) for r in accepted}
    return readings, [(r.field, r.reason) for r in rejected]


def read(context, validator, entities, **options):
    return judged(make(context, **options).notification(entities), validator)


# --- the Smart Data Models examples -------------------------------------------------------------


def test_the_parametrization_covers_every_example_file():
    found = {(path.parent.name, path.name) for path in sdm().glob("*/example*")}
    assert found == {(model, name) for model in MODELS for name in FORMS.values()}


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("model", MODELS)
def test_every_example_in_every_form(context, validator, model, form):
    payload = example(model, form)
    records = make(context, entity_map=EXAMPLE_MAP).notification([payload])
    readings, rejected = judged(records, validator)
    assert readings == AGREED[model] | OWN.get((model, form), set())
    assert rejected == REJECTED.get((model, form), [])
    for record in records:  # every record carries the payload's own text of it
        assert json.loads(record.raw)["id"] == payload["id"]


@pytest.mark.parametrize("model", MODELS)
def test_the_forms_agree_where_the_examples_agree(context, validator, model):
    adapter = make(context, entity_map=EXAMPLE_MAP)
    per_form = {form: judged(adapter.notification([example(model, form)]), validator)[0] for form in FORMS}
    assert set.intersection(*per_form.values()) == AGREED[model]
    for form, readings in per_form.items():
        assert readings - AGREED[model] == OWN.get((model, form), set())


def test_a_v2_notification_of_every_example(context, validator):
    data = [example(model, "v2-normalized") for model in MODELS]
    body = json.dumps({"subscriptionId": "57458eb60962ef754e7c0998", "data": data})
    readings, rejected = read(context, validator, json.loads(body), entity_map=EXAMPLE_MAP)
    expected = set().union(*(AGREED[m] | OWN.get((m, "v2-normalized"), set()) for m in MODELS))
    assert readings == expected
    assert rejected == REJECTED[("AirQualityObserved", "v2-normalized")]


def test_an_ld_notification_of_every_example(context, validator):
    body = {
        "id": "urn:ngsi-ld:Notification:5fd0fa684eb81930c97005f3",
        "type": "Notification",
        "subscriptionId": "urn:ngsi-ld:Subscription:wuxi-environment",
        "notifiedAt": "2024-05-01T08:00:00.000Z",
        "data": [example(model, "ld-normalized") for model in MODELS],
    }
    adapter = make(context, entity_map=EXAMPLE_MAP)
    readings, rejected = judged(adapter.notification(json.dumps(body).encode()), validator)
    assert readings == set().union(*(AGREED[m] | OWN.get((m, "ld-normalized"), set()) for m in MODELS))
    assert rejected == []


def test_expanded_ld_names_read_like_compacted_ones(context, validator):
    """An LD broker asked without the model's @context answers with IRIs for every term."""
    compact = example("AirQualityObserved", "ld-normalized")
    base = "https://smartdatamodels.org/dataModel.Environment/"
    expanded = {(k if k in ("id", "@context") else base + k): v for k, v in compact.items()}
    expanded["type"] = base + "AirQualityObserved"
    adapter = make(context, entity_map=EXAMPLE_MAP)
    assert judged(adapter.notification([expanded]), validator) == judged(
        adapter.notification([compact]), validator
    )


def test_relocated_examples_resolve_by_location(context, validator):
    """Without entity_map: the nearest station of the indicator's kind, else the district."""
    xuelang = context.city.stations[0]
    assert xuelang.code == "1188A"
    air = example("AirQualityObserved", "ld-normalized")
    air["location"]["value"]["coordinates"] = [xuelang.lon + 0.002, xuelang.lat]  # about 190 m east
    readings, _ = read(context, validator, [air])
    assert ("env.no2", "1188A", T_AIR, 69.0) in readings
    assert ("weather.temperature", "320211", T_AIR, 12.2) in readings
    readings, _ = read(context, validator, [air], max_distance=100)
    assert ("env.no2", "320211", T_AIR, 69.0) in readings  # no station near enough: the district


def test_an_entity_outside_the_city_is_rejected_under_its_ngsi_id(context, validator):
    air = example("AirQualityObserved", "ld-normalized")  # in Madrid
    readings, rejected = read(context, validator, [air])
    assert readings == set()
    assert ("entity", f"unknown station or region {air['id'][:60]!r}") in rejected


# --- times ------------------------------------------------------------------------------------


def traffic(**changes: object) -> dict:
    entity = {
        "id": "urn:ngsi-ld:TrafficFlowObserved:lane-1",
        "type": "TrafficFlowObserved",
        "intensity": {"type": "Property", "value": 60},
        "averageVehicleSpeed": {"type": "Property", "value": 40.0},
        "dateObserved": {"type": "Property", "value": "2024-05-01T08:00:00/2024-05-01T08:15:00"},
    }
    entity.update(changes)
    return {k: v for k, v in entity.items() if v is not None}


LANES = {"lane-1": "RD01", "lane-2": "RD01", "lane-3": "RD01"}


def test_an_interval_without_a_zone_ends_in_city_time(context, validator):
    readings, _ = read(context, validator, [traffic()], entity_map=LANES)
    assert readings == {
        ("traffic.road_volume", "RD01", "2024-05-01T00:15:00+00:00", 240.0),  # 60 in 15 min
        ("traffic.road_speed", "RD01", "2024-05-01T00:15:00+00:00", 40.0),
    }


def test_a_count_without_a_period_is_rejected(context, validator):
    instant = {"type": "Property", "value": {"@type": "DateTime", "@value": "2024-05-01T08:15:00Z"}}
    readings, rejected = read(context, validator, [traffic(dateObserved=instant)], entity_map=LANES)
    assert readings == {("traffic.road_speed", "RD01", "2024-05-01T08:15:00+00:00", 40.0)}
    assert rejected == [("value", "not a number: '60 per unknown period'")]


def test_an_attributes_own_time_comes_first(context, validator):
    entity = traffic(
        averageVehicleSpeed={"type": "Property", "value": 35.0, "observedAt": "2024-05-01T08:14:00Z"},
        intensity={
            "type": "Number",
            "value": 90,
            "metadata": {"TimeInstant": {"type": "DateTime", "value": "2024-05-01T08:13:00Z"}},
        },
    )
    readings, _ = read(context, validator, [entity], entity_map=LANES)
    assert readings == {
        ("traffic.road_speed", "RD01", "2024-05-01T08:14:00+00:00", 35.0),
        ("traffic.road_volume", "RD01", "2024-05-01T08:13:00+00:00", 360.0),
    }


def test_a_missing_or_unreadable_time_is_rejected(context, validator):
    _, rejected = read(context, validator, [traffic(dateObserved=None)], entity_map=LANES)
    assert rejected[0] == ("observed_at", "unreadable timestamp 'no dateObserved, observedAt or TimeInstant'")
    _, rejected = read(context, validator, [traffic(dateObserved="yesterday")], entity_map=LANES)
    assert ("observed_at", "unreadable timestamp 'yesterday'") in rejected
    backwards = "2024-05-01T08:15:00/2024-05-01T08:00:00"
    _, rejected = read(context, validator, [traffic(dateObserved=backwards)], entity_map=LANES)
    assert ("observed_at", f"unreadable timestamp {backwards!r}") in rejected


@settings(max_examples=60, deadline=None)
@given(
    start=st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2090, 1, 1),
        timezones=st.sampled_from([None, UTC, ZoneInfo("Europe/Madrid")]),
    ),
    minutes=st.integers(1, 24 * 60),
    wrapped=st.booleans(),
)
def test_an_interval_reads_as_its_end(start, minutes, wrapped):
    # Elapsed time, not wall-clock (Madrid's clocks go back in October); naive times are Wuxi's.
    end = (
        start + timedelta(minutes=minutes)
        if start.tzinfo is None
        else ((start.astimezone(UTC) + timedelta(minutes=minutes)).astimezone(start.tzinfo))
    )
    text = f"{start.isoformat()}/{end.isoformat()}"
    period = period_of({"@type": "DateTime", "@value": text} if wrapped else text, ZONE)
    assert period is not None
    assert period.end == as_utc(end, ZONE)
    assert period.seconds == minutes * 60


# --- forms and values ---------------------------------------------------------------------------

AIR_MAP = {"station-x": "1188A"}


def air(pm25: object, observed: object = "2024-05-01T08:00:00+08:00", **more: object) -> dict:
    return {
        "id": "urn:ngsi-ld:AirQualityObserved:station-x",
        "type": "AirQualityObserved",
        "pm25": pm25,
        "dateObserved": observed,
        **more,
    }


def in_form(value: object, form: str, unit: str | None = None) -> object:
    if form == "keyvalues":
        return value
    if form == "v2":
        meta = {"unitCode": {"type": "Text", "value": unit}} if unit else {}
        return {"type": "Number", "value": value, "metadata": meta}
    wrapped = {"@type": "Number", "@value": value} if form == "ld-typed" else value
    return {"type": "Property", "value": wrapped, **({"unitCode": unit} if unit else {})}


@settings(max_examples=80, deadline=None)
@given(
    value=st.floats(0, 999, allow_nan=False),
    form=st.sampled_from(["keyvalues", "v2", "ld", "ld-typed"]),
    date_form=st.sampled_from(["keyvalues", "v2", "ld", "ld-typed"]),
    unit=st.sampled_from([None, "GQ", "ug/m3"]),
)
def test_every_form_of_a_reading_reads_the_same(context, validator, value, form, date_form, unit):
    if form == "keyvalues":
        unit = None  # key-values carry no unit: the model's (µg/m³) applies
    date = "2024-05-01T08:00:00+08:00"
    dated = {
        "keyvalues": date,
        "v2": {"type": "DateTime", "value": date},
        "ld": {"type": "Property", "value": date},
        "ld-typed": {"type": "Property", "value": {"@type": "DateTime", "@value": date}},
    }[date_form]
    readings, rejected = read(
        context, validator, [air(in_form(value, form, unit), dated)], entity_map=AIR_MAP
    )
    assert readings == {("env.pm25", "1188A", "2024-05-01T00:00:00+00:00", round(value, 6))}
    assert rejected == []


def test_unit_codes_convert(context, validator):
    entity = air(
        {"type": "Property", "value": 0.05, "unitCode": "GP"},  # mg/m³
        no2={"type": "Number", "value": 40, "metadata": {"unitCode": {"value": "61"}}},  # ppb
        o3={"type": "Property", "value": 0.1, "unitCode": "59"},  # ppm
        windSpeed={"type": "Property", "value": 36, "unitCode": "KMH"},
        temperature={"type": "Property", "value": 50, "unitCode": "FAH"},
    )
    readings, rejected = read(context, validator, [entity], entity_map=AIR_MAP)
    t = "2024-05-01T00:00:00+00:00"
    assert readings == {
        ("env.pm25", "1188A", t, 50.0),
        ("env.no2", "1188A", t, round(40 * 46.0055 / 24.45, 6)),
        ("env.o3", "1188A", t, round(100 * 47.9982 / 24.45, 6)),
        ("weather.wind_speed", "320211", t, 10.0),
        ("weather.temperature", "320211", t, 10.0),
    }
    assert rejected == []


def test_an_unknown_unit_or_a_non_number_is_rejected_with_the_payload(context, validator):
    entities = [
        air({"type": "Property", "value": 30, "unitCode": "XYZ"}),
        air({"type": "Property", "value": None}, "2024-05-01T08:05:00+08:00"),
        air("n/a", "2024-05-01T08:10:00+08:00"),
    ]
    records = make(context, entity_map=AIR_MAP).notification(entities)
    _, rejected = judged(records, validator)
    assert rejected == [
        ("value", "not a number: \"30 unknown unit code 'XYZ'\""),
        ("value", "not a number: 'None'"),
        ("value", "not a number: 'n/a'"),
    ]
    assert '"unitCode":"XYZ"' in records[0].raw and '"dateObserved"' in records[0].raw


def test_an_ld_entity_of_several_types_maps_by_the_one_known(context, validator):
    entity = air(30) | {"type": ["https://uri.etsi.org/ngsi-ld/default-context/Sensor", "AirQualityObserved"]}
    readings, _ = read(context, validator, [entity], entity_map=AIR_MAP)
    assert readings == {("env.pm25", "1188A", "2024-05-01T00:00:00+00:00", 30.0)}


def test_numeric_text_is_a_number(context, validator):
    readings, _ = read(context, validator, [air(" 35 ")], entity_map=AIR_MAP)
    assert readings == {("env.pm25", "1188A", "2024-05-01T00:00:00+00:00", 35.0)}


def test_a_multi_attribute_reads_its_default_instance(context, validator):
    instances = [
        {"type": "Property", "value": 31, "datasetId": "urn:ngsi-ld:Dataset:backup-sensor"},
        {"type": "Property", "value": 24},
    ]
    readings, _ = read(context, validator, [air(instances)], entity_map=AIR_MAP)
    assert {r[3] for r in readings} == {24.0}


def test_an_older_models_measurand_list_is_read(context, validator):
    entity = air(None, measurand=["NO2, 8.0, GQ, Nitrogen Dioxide", "O3,115.0,GQ,Ozone", "broken"])
    del entity["pm25"]
    readings, _ = read(context, validator, [entity], entity_map=AIR_MAP)
    t = "2024-05-01T00:00:00+00:00"
    assert readings == {("env.no2", "1188A", t, 8.0), ("env.o3", "1188A", t, 115.0)}


def test_water_quality_maps_oxygen_and_ammonium_as_nitrogen(context, validator):
    entity = {
        "id": "river-1",
        "type": "WaterQualityObserved",
        "dateObserved": "2024-05-01T08:00:00Z",
        "O2": 6.2,
        "NH4": {"type": "Number", "value": 1.80385, "metadata": {"unitCode": {"value": "M1"}}},
        "temperature": 19.5,  # water temperature: not the air temperature indicator
    }
    readings, _ = read(context, validator, [entity], entity_map={"river-1": "RV01"})
    t = "2024-05-01T08:00:00+00:00"
    assert readings == {
        ("env.dissolved_oxygen", "RV01", t, 6.2),
        ("env.ammonia_nitrogen", "RV01", t, 1.40067),
    }


def test_parking_occupancy_from_spot_counts(context, validator):
    entity = {
        "id": "urn:ngsi-ld:OffStreetParking:sanyang",
        "type": "OffStreetParking",
        "totalSpotNumber": {"type": "Property", "value": 400},
        "availableSpotNumber": {"type": "Property", "value": 100, "observedAt": "2024-05-01T08:00:00Z"},
    }
    readings, _ = read(context, validator, [entity], entity_map={"sanyang": "PK01"})
    assert readings == {("traffic.parking_occupancy", "PK01", "2024-05-01T08:00:00+00:00", 75.0)}


def test_lanes_of_one_road_add_up_and_their_speeds_average(context, validator):
    lanes = [
        traffic(id="urn:ngsi-ld:TrafficFlowObserved:lane-1"),
        traffic(
            id="urn:ngsi-ld:TrafficFlowObserved:lane-2",
            intensity={"type": "Property", "value": 30},
            averageVehicleSpeed={"type": "Property", "value": 50.0},
        ),
        traffic(id="urn:ngsi-ld:TrafficFlowObserved:lane-1"),  # the same lane twice counts once
        traffic(id="urn:ngsi-ld:TrafficFlowObserved:lane-3", intensity={"type": "Property", "value": -5}),
    ]
    readings, rejected = read(context, validator, lanes, entity_map=LANES)
    t = "2024-05-01T00:15:00+00:00"
    assert readings == {
        ("traffic.road_volume", "RD01", t, 360.0),
        ("traffic.road_speed", "RD01", t, 43.333333),
    }
    assert rejected == [("value", "-20 is outside the physical bounds [0, 12000] of traffic.road_volume")]


def test_what_is_no_entity_is_rejected_not_dropped(context, validator):
    readings, rejected = read(context, validator, [42, {"id": "x"}, {"id": "y", "type": "ParkingSpot"}])
    assert readings == set()
    assert rejected == [("indicator", "unknown indicator '(not an NGSI entity: no type)'")] * 2


# --- places -----------------------------------------------------------------------------------


def test_entity_map_takes_the_ld_or_the_v2_id(context, validator):
    for key in ("station-x", "urn:ngsi-ld:AirQualityObserved:station-x"):
        for entity_id in ("station-x", "urn:ngsi-ld:AirQualityObserved:station-x"):
            entity = air(30) | {"id": entity_id}
            readings, _ = read(context, validator, [entity], entity_map={key: "1189A"})
            assert {r[1] for r in readings} == {"1189A"}


def test_a_road_segment_is_as_near_as_its_nearest_point(context, validator):
    rd01 = next(s for s in context.city.stations if s.code == "RD01")
    # A straight segment passing 0.0005° (about 50 m) west of RD01, ends about 1.1 km away.
    line = [[rd01.lon - 0.0005, rd01.lat - 0.01], [rd01.lon - 0.0005, rd01.lat + 0.01]]
    entity = traffic(location={"type": "GeoProperty", "value": {"type": "LineString", "coordinates": line}})
    readings, _ = read(context, validator, [entity], max_distance=100)
    assert {r[1] for r in readings} == {"RD01"}


def test_gcj02_locations_are_converted_first(context, validator):
    xuelang = context.city.stations[0]
    lon, lat = wgs84_to_gcj02(xuelang.lon, xuelang.lat)
    entity = air(30, location={"type": "Point", "coordinates": [float(lon), float(lat)]})
    readings, _ = read(context, validator, [entity], coordinates="gcj02", max_distance=50)
    assert {r[1] for r in readings} == {"1188A"}
    readings, _ = read(context, validator, [entity], max_distance=50)  # read as WGS84: 500 m off
    assert {r[1] for r in readings} == {"320211"}


def test_a_v2_geo_point_location(context, validator):
    xuelang = context.city.stations[0]
    entity = air(30, location={"type": "geo:point", "value": f"{xuelang.lat}, {xuelang.lon}"})
    readings, _ = read(context, validator, [entity])
    assert {r[1] for r in readings} == {"1188A"}


def test_entity_map_codes_must_exist(context):
    with pytest.raises(ValueError, match=r"entity_map: \['NOPE'\] are neither stations nor regions"):
        make(context, entity_map={"x": "NOPE"})


# --- the mapping as data ------------------------------------------------------------------------


def test_a_deployment_adds_changes_and_removes_attributes(context, validator):
    attributes = {
        "AirQualityObserved": {"airQualityIndex": "env.aqi", "temperature": None},
        "OnStreetParking": {"occupancy": {"indicator": "traffic.parking_occupancy", "unit": "P1"}},
    }
    entities = [
        air(None, airQualityIndex=65, temperature=20.0),
        {
            "id": "street-1",
            "type": "OnStreetParking",
            "occupancy": 80,
            "dateObserved": "2024-05-01T08:00:00+08:00",
        },
    ]
    readings, rejected = read(
        context, validator, entities, attributes=attributes, entity_map=AIR_MAP | {"street-1": "PK02"}
    )
    t = "2024-05-01T00:00:00+00:00"
    assert readings == {("env.aqi", "1188A", t, 65.0), ("traffic.parking_occupancy", "PK02", t, 80.0)}
    assert rejected == [("value", "not a number: 'None'")]  # pm25 is null


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"AirQualityObserved": {"pm1": "env.pm1"}}, "attributes.AirQualityObserved.pm1: unknown indicator"),
        (
            {"AirQualityObserved": {"pm25": {"indicator": "env.pm25", "unit": "KMH"}}},
            r"attributes.AirQualityObserved.pm25 -> env.pm25 \(µg/m³\): km/h is a speed",
        ),
        (
            {"WeatherObserved": {"precipitation": {"indicator": "weather.temperature", "per_hour": True}}},
            "per_hour needs an indicator counted per hour",
        ),
    ],
)
def test_a_mapping_that_cannot_work_stops_the_source(context, attributes, message):
    with pytest.raises(ValueError, match=message):
        make(context, attributes=attributes)


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({}, "give exactly one of url (a context broker) and file (an export)"),
        ({"url": "http://orion:1026", "file": "a.json"}, "give exactly one of url"),
        ({"url": "orion:1026"}, "sources.0 (b).options.url: expected an http:// or https:// URL"),
        ({"url": "http://orion:1026", "api": "ld", "service_path": "/a"}, "NGSI-LD has none"),
        ({"url": "http://orion:1026", "context": "http://ctx"}, "NGSI-v2 has none"),
        ({"url": "http://orion:1026", "page_size": 5000}, "options.page_size"),
        ({"url": "http://orion:1026", "tenant": "x"}, "options.tenant: Extra inputs are not permitted"),
        (
            {"url": "http://orion:1026", "headers": {"X-Auth-Token": "${NGSI_UNSET_TOKEN}"}},
            "options.headers: X-Auth-Token: environment variable NGSI_UNSET_TOKEN is not set",
        ),
        (
            {
                "file": "a.json",
                "attributes": {"AirQualityObserved": {"pm25": {"indicator": "env.pm25", "unit": "µg"}}},
            },
            "options.attributes.AirQualityObserved.pm25.unit: unknown unit code 'µg'",
        ),
    ],
)
def test_option_problems_name_the_key(options, problem):
    problems = option_problems("ngsi", options, "sources.0 (b)")
    assert len(problems) == 1 and problem in problems[0], problems


def test_the_adapter_follows_the_protocol(context):
    adapter = make(context)
    assert isinstance(adapter, Adapter) and NgsiAdapter.backfills is False


# --- units ------------------------------------------------------------------------------------

SAME_QUANTITY = [(a, b) for a in UNITS for b in UNITS if a != b and UNITS[a].quantity == UNITS[b].quantity]


@settings(max_examples=200, deadline=None)
@given(value=st.floats(-1e6, 1e6, allow_nan=False), pair=st.sampled_from(SAME_QUANTITY))
def test_unit_conversions_round_trip(value, pair):
    there = convert(value, *pair)
    assert convert(there, pair[1], pair[0]) == pytest.approx(value, rel=1e-9, abs=1e-6)


def test_unit_conversions_known_values():
    assert convert(1, "ppb", "µg/m³", 46.0055) == pytest.approx(1.8816, rel=1e-4)
    assert convert(1.8816, "µg/m³", "ppb", 46.0055) == pytest.approx(1, rel=1e-4)
    assert convert(32, "°F", "°C") == 0
    assert convert(0, "°C", "K") == 273.15
    assert convert(36, "km/h", "m/s") == 10
    assert convert(0.5, "mg/m³", "µg/m³") == 500
    assert convert(2, "mg/L", "µg/m³") == 2e6
    assert unit_symbol("GQ") == unit_symbol("ug/m3") == unit_symbol("μg/m³") == "µg/m³"
    with pytest.raises(UnitError, match="molar mass"):
        convert(1, "ppb", "µg/m³")
    with pytest.raises(UnitError, match="km/h is a speed, °C a temperature"):
        convert(1, "km/h", "°C")


# --- files and the watermark --------------------------------------------------------------------


def stamped(entity_id: str, modified: str, value: float) -> dict:
    return {
        "id": f"urn:ngsi-ld:AirQualityObserved:{entity_id}",
        "type": "AirQualityObserved",
        "modifiedAt": modified,
        "pm25": {"type": "Property", "value": value},
        "dateObserved": {"type": "Property", "value": modified},
    }


def test_an_export_file_and_its_watermark(context, validator, tmp_path):
    path = tmp_path / "export.jsonld"
    entities = [stamped("a", "2024-05-01T00:00:00Z", 10), stamped("b", "2024-05-01T00:05:00Z", 20)]
    path.write_text(json.dumps(entities), encoding="utf-8")
    adapter = make(context, file=str(path), entity_map={"a": "1188A", "b": "1189A"})
    until = datetime(2024, 5, 1, 1, tzinfo=UTC)
    first = adapter.fetch(None, until)
    assert len(first.records) == 2 and first.watermark == "2024-05-01T00:05:00+00:00"
    assert adapter.fetch(first.watermark, until).records == []
    # b again at the same instant (a broker with second resolution) and a late observation of a
    entities += [stamped("c", "2024-05-01T00:05:00Z", 30), stamped("a", "2024-05-01T00:07:00Z", 11)]
    entities[0] = copy.deepcopy(entities[3])
    path.write_text(json.dumps(entities[:3]), encoding="utf-8")
    second = adapter.fetch(first.watermark, until)
    assert [(r.entity, r.value) for r in second.records] == [
        ("1188A", 11.0),
        ("urn:ngsi-ld:AirQualityObserved:c", 30.0),
    ]
    assert second.watermark == "2024-05-01T00:07:00+00:00"
    assert adapter.fetch(second.watermark, until).records == []


def test_changed_since_keeps_ties_once_and_what_has_no_time():
    a, b = stamped("a", "2024-05-01T00:05:00Z", 1), stamped("b", "2024-05-01T00:05:00Z", 2)
    undated = {"id": "u", "type": "AirQualityObserved", "pm25": 3}
    fresh, mark, seen = changed_since([a, undated], None, frozenset())
    assert fresh == [a, undated] and mark == "2024-05-01T00:05:00+00:00"
    fresh, mark2, seen2 = changed_since([a, b, undated], mark, seen)
    assert fresh == [b, undated] and mark2 == mark and len(seen2) == 2
    fresh, _, _ = changed_since([a, b], mark, frozenset())  # after a restart: ties are sent again
    assert fresh == [a, b]
    fresh, mark3, _ = changed_since([a], "not a time", frozenset())
    assert fresh == [a] and mark3 == mark


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'[{"id": "a",', "not valid JSON at line 1 column 13"),
        (b'{"hello": "world"}', "expected a JSON array of entities, one entity, or a notification"),
        (b"\xff\xfe[]", "not valid JSON|not UTF-8"),
    ],
)
def test_an_unusable_file_fails_the_fetch_naming_it(context, tmp_path, content, message):
    path = tmp_path / "broken.json"
    path.write_bytes(content)
    with pytest.raises(NgsiError, match=message) as caught:
        make(context, file=str(path)).fetch(None, datetime.now(UTC))
    assert str(path) in str(caught.value)
    with pytest.raises(NgsiError, match="cannot read"):
        make(context, file=str(tmp_path / "missing.json")).fetch(None, datetime.now(UTC))


def test_a_file_holding_one_entity_or_a_notification(context, validator, tmp_path):
    path = tmp_path / "one.json"
    for payload in (air(30), {"subscriptionId": "s1", "data": [air(30)]}):
        path.write_text(json.dumps(payload), encoding="utf-8")
        batch = make(context, file=str(path), entity_map=AIR_MAP).fetch(None, datetime.now(UTC))
        assert judged(batch.records, validator)[0] == {
            ("env.pm25", "1188A", "2024-05-01T00:00:00+00:00", 30.0)
        }
        assert batch.watermark is None  # nothing says when the entity changed
