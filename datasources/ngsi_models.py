"""FIWARE Smart Data Models -> catalog indicators, with the unit conversions that takes.

The mapping is data: a deployment adds, changes or removes an attribute's indicator per entity
type with the adapter's `attributes` option, without code. Only attributes whose meaning and unit
match a catalog indicator are mapped by default; deliberately left out:

- AirQualityObserved `airQualityIndex`: the index's scale is national (the Madrid example is
  Spain's ICA), not necessarily HJ 633-2012's AQI behind `env.aqi`;
- WaterQualityObserved `temperature`: water, not air temperature; `turbidity`: the catalog's
  turbidity is treated water leaving the plant, not a river's;
- WeatherObserved `visibility`: a qualitative enumeration in the model, not metres;
- ParkingSpot: one spot's free/occupied status is no car park's occupancy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.settings import parse_duration
from datasources.ngsi_payload import Attr, Entity, canonical

# Litres per mole of an ideal gas at 25 °C and 101.325 kPa: the reference state GB 3095-2012
# (amendment 1, 2018) prescribes for gaseous pollutants, so ppb -> µg/m³ is ppb x M / 24.45.
MOLAR_VOLUME = 24.45
HOUR = 3600.0


class UnitError(ValueError):
    """A value cannot be expressed in the indicator's unit."""


@dataclass(frozen=True)
class Unit:
    """A unit as a linear map to its quantity's base unit: base = value * scale + offset."""

    quantity: str
    scale: float
    offset: float = 0.0


# Keyed by the symbols the catalog writes (and a few more a payload may use).
UNITS: dict[str, Unit] = {
    "µg/m³": Unit("mass concentration", 1e-9),
    "mg/m³": Unit("mass concentration", 1e-6),
    "mg/L": Unit("mass concentration", 1e-3),
    "ppb": Unit("mixing ratio", 1e-9),
    "ppm": Unit("mixing ratio", 1e-6),
    "km/h": Unit("speed", 1 / 3.6),
    "m/s": Unit("speed", 1.0),
    "°C": Unit("temperature", 1.0, 273.15),
    "K": Unit("temperature", 1.0),
    "°F": Unit("temperature", 5 / 9, 273.15 - 32 * 5 / 9),
    "%": Unit("ratio", 0.01),
    "1": Unit("ratio", 1.0),
    "mm": Unit("length", 1e-3),
    "cm": Unit("length", 1e-2),
    "m": Unit("length", 1.0),
    "km": Unit("length", 1e3),
    "dB(A)": Unit("sound level", 1.0),
}

# UN/CEFACT common codes (Recommendation 20), as NGSI `unitCode` carries them.
UN_CEFACT: dict[str, str] = {
    "GQ": "µg/m³",
    "GP": "mg/m³",
    "M1": "mg/L",
    "61": "ppb",
    "59": "ppm",
    "KMH": "km/h",
    "MTS": "m/s",
    "CEL": "°C",
    "KEL": "K",
    "FAH": "°F",
    "P1": "%",
    "C62": "1",
    "MMT": "mm",
    "CMT": "cm",
    "MTR": "m",
    "KTM": "km",
    "2N": "dB(A)",
}

_SPELLINGS = {
    "ug/m3": "µg/m³",
    "µg/m3": "µg/m³",
    "μg/m3": "µg/m³",  # Greek mu
    "μg/m³": "µg/m³",
    "mg/m3": "mg/m³",
    "mg/l": "mg/L",
    "dba": "dB(A)",
    "db(a)": "dB(A)",
}


def unit_symbol(code: str) -> str:
    """The symbol of a UN/CEFACT code or of a symbol as written in a payload."""
    text = str(code).strip()
    symbol = UN_CEFACT.get(text.upper()) or _SPELLINGS.get(text.lower()) or text
    if symbol not in UNITS:
        raise UnitError(f"unknown unit code {text!r}")
    return symbol


def convert(value: float, source: str, target: str, molar_mass: float | None = None) -> float:
    """`value` from unit `source` to unit `target` (symbols); a gas's ppb/ppm needs its molar mass."""
    if source == target:
        return value
    src, dst = UNITS.get(source), UNITS.get(target)
    if src is None or dst is None:
        raise UnitError(f"no conversion from {source} to {target!r}")
    base = value * src.scale + src.offset
    pair = (src.quantity, dst.quantity)
    if pair in (("mixing ratio", "mass concentration"), ("mass concentration", "mixing ratio")):
        if molar_mass is None:
            raise UnitError(f"{source} -> {target} needs the gas's molar mass")
        grams_per_litre = molar_mass / MOLAR_VOLUME  # kg/m³ of a pure gas
        base = base * grams_per_litre if pair[0] == "mixing ratio" else base / grams_per_litre
    elif src.quantity != dst.quantity:
        raise UnitError(f"{source} is a {src.quantity}, {target} a {dst.quantity}")
    # 12 significant digits: a sensor's 12.2 °C stays 12.2, not 12.199999999999989 after K and back.
    return float(f"{(base - dst.offset) / dst.scale:.12g}")


class AttributeMap(BaseModel):
    """How one attribute of one entity type becomes readings of one catalog indicator."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    indicator: str = Field(min_length=1)
    unit: str | None = Field(
        default=None,
        description="the value's unit when the payload gives no unitCode: a UN/CEFACT code (GQ, KMH, CEL) "
        "or a symbol (µg/m³); none: the value is already in the indicator's unit",
    )
    factor: float = Field(default=1.0, description="multiplier after the unit conversion (e.g. NH4 as N)")
    per_hour: bool = Field(
        default=False, description="the value counts over the observation period; stored as a rate per hour"
    )
    period: float | None = Field(
        default=None, description="the observation period when the entity states none (for per_hour)"
    )
    molar_mass: float | None = Field(default=None, gt=0, description="g/mol, for ppb/ppm of a gas")
    time: tuple[str, ...] = Field(
        default=(), description="entity attributes holding this attribute's observation time, tried first"
    )

    @field_validator("unit")
    @classmethod
    def _known_unit(cls, value: str | None) -> str | None:
        if value is not None:
            unit_symbol(value)
        return value

    @field_validator("period", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float | None:
        return None if value is None else parse_duration(value)

    @model_validator(mode="after")
    def _period_needs_rate(self) -> AttributeMap:
        if self.period is not None and not self.per_hour:
            raise ValueError("period only applies to per_hour attributes")
        return self

    def check(self, indicator_unit: str) -> None:
        """UnitError if this map's values can never be expressed in `indicator_unit`."""
        target = indicator_unit
        if self.per_hour:
            if not indicator_unit.endswith("/h"):
                raise UnitError(f"per_hour needs an indicator counted per hour, not {indicator_unit!r}")
            target = indicator_unit.removesuffix("/h")
        if self.unit is not None and target in UNITS:
            convert(1.0, unit_symbol(self.unit), target, self.molar_mass)
        elif self.unit is not None and unit_symbol(self.unit) != target:
            raise UnitError(f"no conversion from {self.unit} to {target!r}")

    def value(self, number: float, unit: str | None, indicator_unit: str, period: float | None) -> float:
        """`number` (in `unit`, else this map's unit) in the indicator's unit; UnitError if impossible."""
        code = unit or self.unit
        target = indicator_unit.removesuffix("/h") if self.per_hour else indicator_unit
        if code is not None:
            number = convert(number, unit_symbol(code), target, self.molar_mass)
        number *= self.factor
        if not self.per_hour:
            return number
        seconds = period or self.period
        if not seconds or seconds <= 0:
            raise UnitError("per unknown period")
        return number * HOUR / seconds


def _m(indicator: str, unit: str | None = None, **extra: object) -> AttributeMap:
    return AttributeMap(indicator=indicator, unit=unit, **extra)


# Default units are the models' own (their specs: µg/m³ pollutants, m/s wind, °C, km/h, L/m² rain,
# A-weighted dB, cm for streamGauge, occupancy as a fraction of one).
SMART_DATA_MODELS: dict[str, dict[str, AttributeMap]] = {
    "AirQualityObserved": {
        "pm25": _m("env.pm25", "GQ"),
        "pm10": _m("env.pm10", "GQ"),
        "no2": _m("env.no2", "GQ", molar_mass=46.0055),
        "o3": _m("env.o3", "GQ", molar_mass=47.9982),
        "temperature": _m("weather.temperature", "CEL"),
        "windSpeed": _m("weather.wind_speed", "MTS"),
        # Litres per m² (= mm) since the previous observation, read as hourly unless stated.
        "precipitation": _m("weather.rainfall", "MMT", per_hour=True, period=HOUR),
    },
    "TrafficFlowObserved": {
        # Vehicles counted during the observation period (dateObservedFrom/To or the interval).
        "intensity": _m("traffic.road_volume", per_hour=True),
        "averageVehicleSpeed": _m("traffic.road_speed", "KMH"),
    },
    "WaterQualityObserved": {
        "O2": _m("env.dissolved_oxygen", "M1"),
        # Ammonium as NH4+ (EU practice); GB 3838 ammonia nitrogen counts the nitrogen: x 14.007/18.038.
        "NH4": _m("env.ammonia_nitrogen", "M1", factor=14.0067 / 18.0385),
    },
    "NoiseLevelObserved": {
        "LAeq": _m("env.noise", "2N"),
    },
    "OffStreetParking": {
        "occupancy": _m("traffic.parking_occupancy", "C62", time=("occupancyModified",)),
    },
    "WeatherObserved": {
        "temperature": _m("weather.temperature", "CEL"),
        "windSpeed": _m("weather.wind_speed", "MTS"),
        "precipitation": _m("weather.rainfall", "MMT", per_hour=True, period=HOUR),
        "streamGauge": _m("water.river_level", "CMT"),
    },
}


def merged(extra: Mapping[str, Mapping[str, AttributeMap | None]]) -> dict[str, dict[str, AttributeMap]]:
    """The built-in mapping with a deployment's additions; None removes a built-in attribute.

    Keys of the result: entity type, then the attribute's canonical name.
    """
    result = {
        kind: {canonical(name): rule for name, rule in attrs.items()}
        for kind, attrs in SMART_DATA_MODELS.items()
    }
    for kind, attrs in extra.items():
        target = result.setdefault(kind, {})
        for name, rule in attrs.items():
            if rule is None:
                target.pop(canonical(name), None)
            else:
                target[canonical(name)] = rule
    return {kind: attrs for kind, attrs in result.items() if attrs}


def _number(attr: Attr | None) -> float | None:
    value = attr.value if attr is not None else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def parking_occupancy(entity: Entity) -> Attr | None:
    """Occupancy from the spot counts, for car parks that publish counts but no `occupancy`."""
    total_attr = entity.get("totalSpotNumber")
    total = _number(total_attr)
    occupied_attr = entity.get("occupiedSpotNumber")
    occupied = _number(occupied_attr)
    if occupied is None:
        occupied_attr = entity.get("availableSpotNumber")
        available = _number(occupied_attr)
        occupied = None if available is None or total is None else total - available
    if total is None or total <= 0 or occupied is None or occupied_attr is None:
        return None
    source = {"totalSpotNumber": total_attr.source, occupied_attr.name: occupied_attr.source}
    return Attr("occupancy", occupied / total, "C62", occupied_attr.observed, source)


# Attributes computed from others when the entity lacks them (canonical name -> derivation).
DERIVED: dict[str, Callable[[Entity], Attr | None]] = {"occupancy": parking_occupancy}


def measurands(entity: Entity) -> dict[str, Attr]:
    """The `measurand` list of older models ("NO2, 8.0, GQ, Nitrogen Dioxide") as attributes."""
    found: dict[str, Attr] = {}
    listed = entity.get("measurand")
    if listed is None or not isinstance(listed.value, list):
        return found
    for item in listed.value:
        parts = [part.strip() for part in str(item).split(",")]
        if len(parts) < 3 or not parts[0]:
            continue
        try:
            value: object = float(parts[1])
        except ValueError:
            value = parts[1]
        found[canonical(parts[0])] = Attr(parts[0], value, parts[2] or None, None, item)
    return found
