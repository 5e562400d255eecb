"""GET /healthz: is the database reachable, is the scheduler alive, how did each source last run.

200 when the database answers and the scheduler's heartbeat is recent; 503 otherwise, so a load
balancer or a watchdog can act on it. Failing sources make the status "degraded", not 503: the
application itself still serves.
"""

from __future__ import annotations

from datetime import datetime

from flask import Flask, jsonify
from sqlalchemy import text

from core.freshness import FAILED_RUNS
from core.timeutil import utcnow
from store.queries import source_health
from store.state import last_heartbeat
from web.runtime import WebRuntime


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def health_report(runtime: WebRuntime) -> tuple[dict, int]:
    report: dict = {"version": runtime.version, "time": utcnow().isoformat()}
    try:
        with runtime.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        report["database"] = {"ok": True}
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        report["database"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        report["status"] = "unhealthy"
        return report, 503
    beat = last_heartbeat(runtime.engine)
    age = (utcnow() - beat).total_seconds() if beat else None
    alive = age is not None and age <= 4 * runtime.settings.scheduler.heartbeat
    report["scheduler"] = {
        "mode": runtime.settings.scheduler.mode,
        "alive": alive,
        "last_heartbeat": _iso(beat),
        "age_s": round(age, 1) if age is not None else None,
    }
    sources = source_health(runtime.engine)
    report["sources"] = [
        {
            "id": s.id,
            "type": s.type,
            "enabled": s.enabled,
            "last_status": s.last_status,
            "last_started_at": _iso(s.last_started_at),
            "last_finished_at": _iso(s.last_finished_at),
            "accepted": s.accepted,
            "rejected": s.rejected,
            "error": s.last_error,
        }
        for s in sources
    ]
    failing = [s.id for s in sources if s.enabled and s.last_status in FAILED_RUNS]
    if not alive:
        report["status"] = "unhealthy"
        return report, 503
    report["status"] = "degraded" if failing else "ok"
    if failing:
        report["failing_sources"] = failing
    return report, 200


def register_health(server: Flask, runtime: WebRuntime) -> None:
    @server.get("/healthz")
    def healthz():
        report, status = health_report(runtime)
        return jsonify(report), status
