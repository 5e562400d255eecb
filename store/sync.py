"""Copy the deployment's definitions (city, catalog, sources) into the store at start-up.

The YAML and shipped files are the truth; the tables mirror them so queries can join on them.
Rows that the files no longer name are kept (their history stays readable) but sources are disabled.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from core.city import City
from core.settings import SourceSettings
from indicators.catalog import Catalog
from store.models import IndicatorRow, Region, Source, Station


def sync_city(session: Session, city: City) -> None:
    parents_first = sorted(city.regions, key=lambda r: r.parent_code is not None)
    for region in parents_first:
        session.merge(
            Region(
                code=region.code,
                parent_code=region.parent_code,
                level=region.level,
                name_zh=region.name.zh,
                name_en=region.name.en,
                center_lon=region.center[0],
                center_lat=region.center[1],
                geometry=region.geometry,
            )
        )
    session.flush()
    for station in city.stations:
        session.merge(
            Station(
                code=station.code,
                name_zh=station.name.zh,
                name_en=station.name.en,
                kind=station.kind,
                domain=station.domain,
                lon=station.lon,
                lat=station.lat,
                region_code=station.region_code,
            )
        )


def sync_catalog(session: Session, catalog: Catalog) -> None:
    for indicator in catalog:
        session.merge(
            IndicatorRow(
                key=indicator.key,
                domain=indicator.domain,
                name_zh=indicator.name.zh,
                name_en=indicator.name.en,
                unit=indicator.unit,
                level=indicator.level,
                classification=indicator.classification,
                definition=indicator.model_dump(mode="json", by_alias=True),
            )
        )


def sync_sources(session: Session, sources: list[SourceSettings]) -> None:
    configured = {source.id for source in sources}
    for source in sources:
        row = session.get(Source, source.id)
        if row is None:
            row = Source(id=source.id, watermark=None)
            session.add(row)
        row.type, row.every_s, row.enabled = source.type, source.every, source.enabled
        row.options = source.options
    if configured:
        session.execute(update(Source).where(Source.id.not_in(configured)).values(enabled=False))


def sync_all(session: Session, city: City, catalog: Catalog, sources: list[SourceSettings]) -> None:
    sync_city(session, city)
    sync_catalog(session, catalog)
    sync_sources(session, sources)
    session.commit()
