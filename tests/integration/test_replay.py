"""`citybrain ingest --from`: replays go through the pipeline, store nothing twice, keep the watermark."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core.timeutil import utcnow
from ingest.pipeline import run_source
from ingest.replay import ReplayError, replay
from store.models import Alert, Reading, Source


def count(ctx) -> int:
    with ctx.sessions() as session:
        return session.scalar(select(func.count()).select_from(Reading))


def open_alerts(ctx) -> set[tuple[int, str]]:
    with ctx.sessions() as session:
        return set(
            session.execute(select(Alert.id, Alert.state).where(Alert.state.in_(("active", "acknowledged"))))
        )


def watermark(ctx, source_id: str) -> str | None:
    with ctx.sessions() as session:
        return session.get(Source, source_id).watermark


def test_a_range_replay_is_idempotent_and_keeps_the_live_position(ingest):
    live = run_source(ingest, "wuxi-sim", since=(utcnow() - timedelta(minutes=30)).isoformat())
    assert live.status in ("ok", "partial") and live.accepted > 0
    position = watermark(ingest, "wuxi-sim")
    live_alerts = open_alerts(ingest)
    start = (utcnow() - timedelta(days=2)).astimezone(ingest.settings.tz).strftime("%Y-%m-%dT%H:%M")
    end = (utcnow() - timedelta(days=1)).astimezone(ingest.settings.tz).strftime("%Y-%m-%dT%H:%M")
    steps = []
    first = replay(ingest, "wuxi-sim", f"{start}..{end}", lambda done, total, _r: steps.append((done, total)))
    assert steps[-1][0] == steps[-1][1] == len(first)
    stored = count(ingest)
    assert sum(r.accepted for r in first) > 10_000
    again = replay(ingest, "wuxi-sim", f"{start}..{end}")
    assert sum(r.accepted for r in again) == sum(r.accepted for r in first)
    assert count(ingest) == stored  # nothing twice
    assert watermark(ingest, "wuxi-sim") == position
    assert open_alerts(ingest) == live_alerts  # history behind the live edge leaves today's alerts alone


def test_replay_errors_name_the_problem(ingest):
    with pytest.raises(ReplayError, match="unknown source"):
        replay(ingest, "nope", "1d")
    with pytest.raises(ReplayError, match="neither an existing file nor a range"):
        replay(ingest, "wuxi-sim", "/no/such/file.csv")
    with pytest.raises(ReplayError, match="does not read files"):
        replay(ingest, "wuxi-sim", __file__)


def test_the_cli_replays_with_a_progress_bar(ingest, capsys):
    from app import main

    assert main(["ingest", "wuxi-hotline", "--from", "6h"]) == 0
    out = capsys.readouterr()
    assert "wuxi-hotline:" in out.out and "accepted=" in out.out
    assert "replay wuxi-hotline" in out.err  # the tqdm bar
    assert main(["ingest", "wuxi-hotline", "--from", "someday"]) == 2
    assert "neither an existing file nor a range" in capsys.readouterr().err
