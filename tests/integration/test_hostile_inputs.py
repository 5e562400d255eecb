"""Hostile input ends in quarantine with a readable reason, and nothing valid is lost.

One GB18030 export carries every kind of bad line a department's system produces; the valid lines
around them must all be stored, the bad ones kept with the field and reason, and the quarantine
shown as text (HTML in a name is data, not markup).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from ingest.pipeline import run_source
from store.models import Reading, RejectedRecord
from tests.integration.test_tabular_ingest import configure

HOSTILE = {
    "nan": ("NaN", "value", "not a finite number"),
    "inf": ("inf", "value", "not a finite number"),
    "negative": ("-5", "value", "outside the physical bounds"),
    "huge": ("1e308", "value", "outside the physical bounds"),
    "text": ("一百", "value", "not a number"),
    "future": (None, "observed_at", "in the future"),
    "bad_time": (None, "observed_at", "unreadable timestamp"),
    "html_name": (None, "entity", "unknown station or region"),
    "sql_name": (None, "entity", "unknown station or region"),
    "empty_value": ("", "value", "not a number"),
}


def test_every_hostile_line_is_quarantined_and_every_valid_one_stored(ingest, tmp_path):
    zone = ingest.settings.tz
    base = datetime.now(zone).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    stamp = base.strftime("%Y-%m-%d %H:%M")
    valid = [f"{(base - timedelta(hours=h)).strftime('%Y-%m-%d %H:%M')},1188A,{40 + h}" for h in range(1, 21)]
    hostile = {
        "nan": f"{stamp},1189A,NaN",
        "inf": f"{stamp},1190A,inf",
        "negative": f"{stamp},1191A,-5",
        "huge": f"{stamp},1192A,1e308",
        "text": f"{stamp},1193A,一百",
        "future": f"{(base + timedelta(days=3)).strftime('%Y-%m-%d %H:%M')},1194A,50",
        "bad_time": "2026-02-30 25:61,1195A,50",
        "html_name": f'{stamp},"<img src=x onerror=alert(1)>",50',
        "sql_name": f'{stamp},"1188A\'; DROP TABLE readings; --",50',
        "empty_value": f"{stamp},1189A,",
    }
    lines = [
        "时间,站点,AQI",
        *valid[:10],
        *hostile.values(),
        *valid[10:],
        "",
        "truncated-line-without-commas",
    ]
    path = tmp_path / "hostile.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode("gb18030"))
    configure(
        ingest,
        "hostile",
        "csv",
        path=str(path),
        observed_at_column="时间",
        entity_column="站点",
        indicator="env.aqi",
        value_column="AQI",
    )

    result = run_source(ingest, "hostile")

    assert result.status == "partial"
    assert result.accepted == len(valid)
    with ingest.sessions() as session:
        stored = session.scalar(
            select(func.count()).select_from(Reading).where(Reading.source_id == "hostile")
        )
        rejected = list(session.scalars(select(RejectedRecord).where(RejectedRecord.run_id == result.run_id)))
    assert stored == len(valid)  # nothing valid lost
    reasons = {row.raw.split(": ", 1)[1]: row for row in rejected if ": " in row.raw}
    for name, line in hostile.items():
        _, field, reason = HOSTILE[name]
        row = reasons[line]
        assert row.field == field and reason in row.reason, (name, row.field, row.reason)
    assert any("hostile.csv:" in row.raw for row in rejected)  # the file and line are named
    assert result.rejected == len(rejected) >= len(hostile)
    with ingest.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Reading)) >= stored  # the table survived


def test_the_console_shows_hostile_text_as_text(ingest, tmp_path):
    from types import SimpleNamespace

    from callbacks.sources import rejected_views
    from layouts.sources import rejected_rows

    path = tmp_path / "names.csv"
    at = (datetime.now(ingest.settings.tz) - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M")
    path.write_text(f'时间,站点,AQI\n{at},"<script>alert(1)</script>",50\n', encoding="utf-8")
    configure(
        ingest,
        "names",
        "csv",
        path=str(path),
        observed_at_column="时间",
        entity_column="站点",
        indicator="env.aqi",
        value_column="AQI",
    )
    run_source(ingest, "names")
    runtime = SimpleNamespace(settings=ingest.settings, engine=ingest.engine)
    [row] = rejected_rows(rejected_views(runtime, "names"))
    # AG Grid renders cell values as text nodes; the value is the raw string, never markup we built
    assert "<script>alert(1)</script>" in row["raw"] and "<script>" in row["reason"]
