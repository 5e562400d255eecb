"""`citybrain ingest SOURCE --from FILE_OR_RANGE`: replay history without disturbing the live feed.

A file (or folder) is read with the source's own mapping, through the options its adapter's
`replay_options(path)` gives; a time range (`7d`, `2026-11-01..2026-11-20`, `2026-11-01T08:00..`)
is fetched in day chunks from adapters that can replay a window (`backfills`). Either way the
readings go through the one pipeline, upserts make a second replay store nothing twice, and the
source's watermark stays where the live feed left it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from core.settings import parse_duration
from core.timeutil import as_utc, utcnow
from datasources.registry import adapter_class
from ingest.context import IngestContext
from ingest.pipeline import RunResult, backfill, run_source

Progress = Callable[[int, int, RunResult], None]


class ReplayError(ValueError):
    """A replay that cannot be done as asked, with the reason to show on the console."""


def _instant(text: str, zone: ZoneInfo, end_of_day: bool) -> datetime:
    """A date (the whole day) or a date-time; naive values are the city's wall-clock time."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ReplayError(f"unreadable time {text!r} (use 2026-11-01 or 2026-11-01T08:00)") from None
    if len(text.strip()) == 10 and end_of_day:
        value = datetime.combine(value.date() + timedelta(days=1), time())
    return as_utc(value, zone)


def parse_window(text: str, zone: ZoneInfo, now: datetime | None = None) -> tuple[datetime, datetime]:
    """`7d` (the last 7 days), `A..B`, `A..` (until now); dates cover whole days."""
    now = now or utcnow()
    if ".." in text:
        first, _, last = text.partition("..")
        start = _instant(first, zone, end_of_day=False)
        end = _instant(last, zone, end_of_day=True) if last.strip() else now
    else:
        try:
            start, end = now - timedelta(seconds=parse_duration(text)), now
        except ValueError:
            raise ReplayError(
                f"--from {text!r} is neither an existing file nor a range (7d, 2026-11-01..2026-11-20)"
            ) from None
    if end <= start:
        raise ReplayError(f"the range {text!r} ends before it starts")
    return start, min(end, now)


def replay(
    ctx: IngestContext, source_id: str, spec: str, progress: Progress | None = None
) -> list[RunResult]:
    """Replay a file or a time range into the store (see the module docstring)."""
    source = next((s for s in ctx.settings.sources if s.id == source_id), None)
    if source is None:
        known = ", ".join(s.id for s in ctx.settings.sources)
        raise ReplayError(f"unknown source {source_id!r} (configured: {known})")
    cls = adapter_class(source.type)
    path = Path(spec)
    if path.exists():
        replay_options = getattr(cls, "replay_options", None)
        if replay_options is None:
            raise ReplayError(
                f"source {source_id!r} (type {source.type}) does not read files; give a time range"
            )
        result = run_source(
            ctx,
            source_id,
            since=None,
            options=replay_options(str(path.resolve())),
            keep_watermark=True,
            timeout=max(ctx.settings.scheduler.run_timeout, 600),
        )
        if progress:
            progress(1, 1, result)
        return [result]
    if not cls.backfills:
        raise ReplayError(
            f"source {source_id!r} (type {source.type}) cannot replay a time range; give a file or folder "
            f"(no such file: {spec!r})"
        )
    start, end = parse_window(spec, ctx.settings.tz)
    return backfill(ctx, source_id, start, end, progress=progress, keep_watermark=True)
