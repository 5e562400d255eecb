"""The duty desk and the departments' accountability, on SQLite and PostgreSQL.

Reads and figures are checked against hand-computed values; writes go through the real Flask app
with hand-made callback requests (what a forged request would send too), and concurrent officers
are real threads posting at the same moment.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml
from sqlalchemy import select

from callbacks.alerts import DeskQuery, filter_options, owners, parse_query, share_link, urgent_news
from core.timeutil import utcnow
from store import desk
from store.alerts import AlertConflict
from store.models import Alert, AlertEvent, AuditEntry, Series
from store.state import data_version
from store.users import create_token, create_user
from tests.conftest import demo_config
from tests.dash_requests import callback_body, router
from tests.integration.test_auth import csrf

REPO = Path(__file__).resolve().parents[2]
PASSWORDS = {
    "vera": "viewer-pass-1",
    "otto": "officer-pass-1",
    "olga": "officer-pass-2",
    "ada": "admin-pass-01",
}
ROLES = {"vera": "viewer", "otto": "officer", "olga": "officer", "ada": "admin"}
ENV, POLICE, TEST = "市生态环境局", "市公安局", "测试部门"
XSS = '<img src=x onerror="alert(1)"><script>alert(2)</script>'


# --- building blocks -----------------------------------------------------------------------------


def desk_app(ingest, tmp_path: Path, **auth):
    """The app as production runs it (sign-in required), with the tests' indicators and users."""
    from app import load_deployment
    from web.app_factory import create_dash

    config = demo_config()
    config["auth"] = {"anonymous": False, "throttle_after": 3, **auth}
    config["server"]["secret_key"] = "test-secret-key"
    config["indicator_catalogs"] = [str(REPO / "tests" / "data" / "test_indicators.yaml")]
    path = tmp_path / "desk.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    deployment = load_deployment(path)
    with ingest.sessions() as session:
        for name, role in ROLES.items():
            create_user(session, name, PASSWORDS[name], role)
        session.commit()
    app = create_dash(deployment.settings, ingest.engine, deployment.city, deployment.catalog, "test")
    app.server.config["TESTING"] = True
    return app


@pytest.fixture
def app(ingest, tmp_path):
    return desk_app(ingest, tmp_path)


def client_of(app, username: str | None):
    client = app.server.test_client()
    if username:
        response = client.post(
            "/login",
            data={"username": username, "password": PASSWORDS[username], "csrf": csrf(client), "next": "/"},
        )
        assert response.status_code == 302 and "error" not in response.headers["Location"]
    return client


def post(client, app, output_id: str, inputs: dict | None = None, state: dict | None = None, changed=None):
    """Post the callback writing `output_id` with these input/state values; `changed` names the
    inputs that set it off (default: every input given)."""
    inputs, state = inputs or {}, state or {"ui-lang.data": "en"}
    body = callback_body(app, output_id, inputs | state, changed if changed is not None else list(inputs))
    return client.post("/_dash-update-component", json=body)


def answer(response, component_id: str, prop: str = "data"):
    assert response.status_code == 200, response.data[:300]
    return response.get_json()["response"][component_id][prop]


def act(client, app, action: str, alert_id: int, note: str = "", **extra) -> dict:
    """Press one of the panel's buttons as the browser does."""
    store, button = {
        "ack": ("desk-ack-done", "desk-ack"),
        "comment": ("desk-comment-done", "desk-comment"),
        "close": ("desk-close-done", "desk-close"),
        "assign": ("desk-assign-done", "desk-assign"),
    }[action]
    state = {"desk-selected.data": {"id": alert_id}, "desk-note.value": note}
    state.update(extra)
    return answer(post(client, app, store, {f"{button}.n_clicks": 1}, state), store)


def add_alert(
    ingest,
    key: str,
    entity: str,
    severity: int,
    state: str = "active",
    opened=None,
    acknowledged=None,
    resolved=None,
    department: str | None = None,
    muted: bool = False,
    peak: int | None = None,
    rule: str = "threshold",
) -> int:
    """An alert as the pipeline leaves it (with its `opened` event), at the times a test needs."""
    now = utcnow()
    opened = opened or now - timedelta(minutes=10)
    with ingest.sessions() as session:
        series = session.scalars(
            select(Series).where(Series.indicator_key == key, Series.entity == entity)
        ).first()
        if series is None:
            series = Series(indicator_key=key, entity=entity, region_code=ingest.region_of.get(entity))
            session.add(series)
            session.flush()
        alert = Alert(
            rule_key=f"{key}:{rule}",
            series_id=series.id,
            state=state,
            severity=severity,
            peak_severity=peak or severity,
            value=float(severity * 100),
            opened_at=opened,
            updated_at=resolved or acknowledged or opened,
            resolved_at=resolved,
            closed_at=resolved if state == "closed" else None,
            acknowledged_at=acknowledged,
            acknowledged_by="officer.li" if acknowledged else None,
            department=department,
            muted=muted,
            explanation_zh=f"{key} 于 {entity} 预警",
            explanation_en=f"{key} warning at {entity}",
            version=1,
        )
        session.add(alert)
        session.flush()
        session.add(
            AlertEvent(alert_id=alert.id, at=opened, actor="system", kind="opened", to_severity=severity)
        )
        session.commit()
        return alert.id


def events(ingest, alert_id: int) -> list[tuple[str, str, str]]:
    with ingest.sessions() as session:
        rows = session.scalars(
            select(AlertEvent).where(AlertEvent.alert_id == alert_id).order_by(AlertEvent.id)
        )
        return [(e.kind, e.actor, e.note) for e in rows]


def alert_row(ingest, alert_id: int) -> Alert:
    with ingest.sessions() as session:
        return session.get(Alert, alert_id)


def owner_map(ingest) -> dict[str, str]:
    return owners(ingest.catalog)


# --- the desk's reads ----------------------------------------------------------------------------


@pytest.fixture
def mixed(ingest):
    """A desk in a typical state; stations 1188A/1191A lie in 320211, 1189A/1190A in 320213."""
    now = utcnow()
    ids = {
        "red_new": add_alert(ingest, "env.pm25", "1188A", 4, opened=now - timedelta(minutes=10)),
        "red_old": add_alert(ingest, "test.plain", "1189A", 4, opened=now - timedelta(minutes=30)),
        "orange_ack": add_alert(
            ingest,
            "env.pm25",
            "1189A",
            3,
            "acknowledged",
            now - timedelta(hours=1),
            now - timedelta(minutes=50),
        ),
        "restricted": add_alert(ingest, "safety.crowd_density", "320211", 1, opened=now - timedelta(hours=2)),
        "yellow_resolved": add_alert(
            ingest,
            "env.pm25",
            "1190A",
            2,
            "resolved",
            now - timedelta(hours=3),
            resolved=now - timedelta(hours=2),
        ),
        "blue_resolved_acked": add_alert(
            ingest,
            "test.plain",
            "1191A",
            1,
            "resolved",
            now - timedelta(hours=5),
            now - timedelta(hours=4),
            now - timedelta(hours=3),
            department=ENV,
        ),
        "blue_closed": add_alert(
            ingest,
            "test.plain",
            "1190A",
            1,
            "closed",
            now - timedelta(hours=9),
            resolved=now - timedelta(hours=8),
        ),
    }
    return ids


def listed(ingest, **where) -> list[int]:
    alerts, total = desk.desk_alerts(ingest.engine, desk.DeskFilter(**where), owner_map(ingest))
    assert total == len(alerts)
    return [a.id for a in alerts]


def test_open_alerts_come_first_by_level_then_longest_waiting(ingest, mixed):
    assert listed(ingest) == [
        mixed["red_old"],
        mixed["red_new"],
        mixed["orange_ack"],
        mixed["restricted"],
        mixed["yellow_resolved"],
        mixed["blue_resolved_acked"],
    ]


def test_filters_narrow_the_desk(ingest, mixed):
    assert listed(ingest, levels=(4,)) == [mixed["red_old"], mixed["red_new"]]
    assert listed(ingest, states=("closed",)) == [mixed["blue_closed"]]
    assert listed(ingest, states=("resolved",), levels=(2,)) == [mixed["yellow_resolved"]]
    assert listed(ingest, districts=("320213",)) == [
        mixed["red_old"],
        mixed["orange_ack"],
        mixed["yellow_resolved"],
    ]
    # a department's alerts: dispatched to it, or unassigned and of an indicator it owns
    assert listed(ingest, departments=(ENV,)) == [
        mixed["red_new"],
        mixed["orange_ack"],
        mixed["yellow_resolved"],
        mixed["blue_resolved_acked"],
    ]
    assert listed(ingest, departments=(TEST,)) == [mixed["red_old"]]
    safety = frozenset(i.key for i in ingest.catalog if i.domain == "safety")
    assert listed(ingest, indicators=safety) == [mixed["restricted"]]
    assert listed(ingest, districts=("320211' OR '1'='1",)) == []


def test_counts_per_level_are_of_open_alerts_under_the_other_filters(ingest, mixed):
    owners_ = owner_map(ingest)
    assert desk.level_counts(ingest.engine, desk.DeskFilter(), owners_) == {4: 2, 3: 1, 1: 1}
    assert desk.level_counts(ingest.engine, desk.DeskFilter(levels=(4,), districts=("320213",)), owners_) == {
        4: 1,
        3: 1,
    }


def test_urgent_alerts_are_announced_once_per_level(ingest, mixed):
    urgent = desk.urgent(ingest.engine, None)
    assert [a.id for a in urgent] == [mixed["red_new"], mixed["red_old"], mixed["orange_ack"]]
    news, known = urgent_news(urgent, {})
    assert len(news) == 3
    assert urgent_news(urgent, known)[0] == []
    # an orange alert announced at orange is announced again when it turns red
    escalated = [
        a if a.id != mixed["orange_ack"] else a.__class__(**{**a.__dict__, "severity": 4}) for a in urgent
    ]
    assert [a.id for a in urgent_news(escalated, known)[0]] == [mixed["orange_ack"]]


def test_shared_links_keep_only_known_filter_values(app, ingest):
    runtime = app.server.config["CITYBRAIN_RUNTIME"]
    options = filter_options(runtime, "en", ("internal", "public", "restricted"))
    query = parse_query(
        {
            "level": "4,3,9",
            "district": "320211' OR 1=1 --",
            "state": ["active", "nonsense"],
            "department": ENV,
        },
        options,
    )
    assert query == DeskQuery(level=("4", "3"), state=("active",), department=(ENV,))
    assert share_link(query, 12) == f"/alerts?level=4,3&state=active&department={quote(ENV)}&alert=12"

    officer = client_of(app, "otto")
    shared = router("/alerts")
    shared["inputs"][1]["value"] = "?level=4,3&district=320213&alert=7"
    page = officer.post("/_dash-update-component", json=shared)
    assert page.status_code == 200
    layout = page.data.decode()
    assert '"value":["4","3"],"multi":true' in layout.replace(" ", "")
    assert '"data":{"id":7,"focus":false}' in layout.replace(" ", "")


# --- writes in the store -------------------------------------------------------------------------


def test_assign_records_the_department_and_refuses_a_stale_view(ingest, mixed):
    alert_id = mixed["red_new"]
    seen = alert_row(ingest, alert_id).version
    with ingest.sessions() as session:
        desk.assign(session, alert_id, POLICE, "otto", "crowd at the station", version=seen)
        session.commit()
    alert = alert_row(ingest, alert_id)
    assert (alert.department, alert.assigned_by, alert.version) == (POLICE, "otto", seen + 1)
    entries = desk.timeline(ingest.engine, alert_id)
    assert (entries[-1].kind, entries[-1].department, entries[-1].note) == (
        "assigned",
        POLICE,
        "crowd at the station",
    )
    with ingest.sessions() as session, pytest.raises(AlertConflict) as conflict:
        desk.assign(session, alert_id, ENV, "olga", version=seen)
    assert conflict.value.by == "otto"
    with ingest.sessions() as session, pytest.raises(AlertConflict):
        desk.assign(session, mixed["blue_closed"], ENV, "olga")
    with ingest.sessions() as session, pytest.raises(ValueError):
        desk.assign(session, alert_id, "two\nlines", "olga")


def test_bulk_acknowledges_only_blue_and_yellow(ingest, mixed):
    now = utcnow()
    storm = [add_alert(ingest, "test.plain", code, 1, opened=now) for code in ("1192A", "1193A", "1194A")]
    yellow = add_alert(ingest, "env.pm25", "1194A", 2, opened=now)
    with ingest.sessions() as session:
        desk.bulk_acknowledge(session, [storm[0]], "olga")
        session.commit()
    wanted = [*storm, yellow, mixed["red_new"], mixed["restricted"], 999_999]
    visible = frozenset(i.key for i in ingest.catalog if i.classification != "restricted")
    with ingest.sessions() as session:
        result = desk.bulk_acknowledge(session, wanted, "otto", "storm of blue", visible)
        session.commit()
    assert result.done == (storm[1], storm[2], yellow)
    assert result.too_severe == (mixed["red_new"],)
    assert result.taken == {storm[0]: "olga"}
    assert result.missing == (mixed["restricted"], 999_999)
    assert alert_row(ingest, mixed["red_new"]).state == "active"
    assert events(ingest, yellow)[-1] == ("acknowledged", "otto", "storm of blue")


# --- the departments' figures (考核) --------------------------------------------------------------


def test_department_figures_match_hand_computed_values(ingest):
    now = utcnow().replace(microsecond=0)
    m, h, d = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
    add_alert(ingest, "env.pm25", "1188A", 4, opened=now - 40 * m)  # open, overdue (red: 30 min)
    add_alert(ingest, "env.pm25", "1189A", 1, "acknowledged", now - 2 * h, now - 2 * h + 10 * m)  # ack 10 min
    add_alert(ingest, "env.pm25", "1190A", 3, "resolved", now - d, now - d + 20 * m, now - d + 2 * h)
    add_alert(
        ingest, "env.pm25", "1191A", 2, "closed", now - 3 * d, now - 3 * d + 30 * m, now - 3 * d + 4 * h
    )
    add_alert(ingest, "env.pm25", "1192A", 2, "closed", now - 20 * d, resolved=now - 19 * d)  # 30 days only
    add_alert(ingest, "env.pm25", "1193A", 4, opened=now - 5 * h, muted=True)  # maintenance: left out
    # dispatched from its owner (the test department) to the environment bureau: open 3 h, orange 2 h
    add_alert(ingest, "test.plain", "1188A", 3, opened=now - 3 * h, department=ENV)
    # blue now but red at its worst: judged by the red deadline
    add_alert(ingest, "test.plain", "1189A", 1, opened=now - 45 * m, peak=4)
    add_alert(ingest, "safety.crowd_density", "320211", 2, "resolved", now - 2 * h, resolved=now - h)

    week = desk.department_figures(ingest.engine, owner_map(ingest), now - 7 * d, now)
    assert week[ENV] == desk.DepartmentFigures(
        ENV,
        open=3,
        overdue=2,
        resolved=2,
        acknowledged=3,
        median_acknowledge=20 * m,
        median_resolve=3 * h,
    )
    assert week[TEST] == desk.DepartmentFigures(TEST, open=1, overdue=1)
    assert week[POLICE] == desk.DepartmentFigures(POLICE, resolved=1, median_resolve=h)
    assert week["市水利局"] == desk.DepartmentFigures("市水利局")

    month = desk.department_figures(ingest.engine, owner_map(ingest), now - 30 * d, now)
    assert (month[ENV].resolved, month[ENV].median_resolve) == (3, 4 * h)

    public = frozenset(i.key for i in ingest.catalog if i.classification != "restricted")
    hidden = desk.department_figures(ingest.engine, owner_map(ingest), now - 7 * d, now, indicators=public)
    assert hidden[POLICE] == desk.DepartmentFigures(POLICE)

    strict = {4: timedelta(minutes=50), 3: 4 * h, 2: d, 1: d}
    assert (
        desk.department_figures(ingest.engine, owner_map(ingest), now - 7 * d, now, strict)[ENV].overdue == 0
    )


# --- the desk through the web app ----------------------------------------------------------------


def test_an_officer_acknowledges_assigns_comments_and_closes(app, ingest, mixed):
    officer = client_of(app, "otto")
    version = data_version(ingest.engine)
    red = mixed["red_new"]
    assert act(officer, app, "ack", red, "")["outcome"] == "note_required"
    assert alert_row(ingest, red).state == "active"
    assert act(officer, app, "ack", red, "  team on the way  ")["outcome"] == "done"
    assert data_version(ingest.engine) > version
    seen = alert_row(ingest, red).version
    report = act(
        officer,
        app,
        "assign",
        red,
        "please check",
        **{"desk-department.value": POLICE, "desk-panel-version.data": seen},
    )
    assert report["outcome"] == "done"
    assert (
        act(officer, app, "assign", red, **{"desk-department.value": "Not a department"})["outcome"]
        == "no_department"
    )
    assert act(officer, app, "comment", red, "")["outcome"] == "empty_note"
    assert act(officer, app, "comment", red, "sensor checked")["outcome"] == "done"
    assert act(officer, app, "close", red)["outcome"] == "conflict"  # still open
    assert act(officer, app, "close", mixed["yellow_resolved"], "over")["outcome"] == "done"
    assert act(officer, app, "ack", 999_999, "x")["outcome"] == "missing"

    assert events(ingest, red)[1:] == [
        ("acknowledged", "otto", "team on the way"),
        ("assigned", "otto", f"{POLICE}\nplease check"),
        ("commented", "otto", "sensor checked"),
    ]
    assert alert_row(ingest, red).department == POLICE
    assert alert_row(ingest, mixed["yellow_resolved"]).state == "closed"
    with ingest.sessions() as session:
        audited = [
            (a.actor, a.action, a.target)
            for a in session.scalars(select(AuditEntry).order_by(AuditEntry.id))
            if a.action.startswith("alert.")
        ]
    assert audited == [
        ("otto", "alert.acknowledge", f"alert:{red}"),
        ("otto", "alert.assign", f"alert:{red}"),
        ("otto", "alert.comment", f"alert:{red}"),
        ("otto", "alert.close", f"alert:{mixed['yellow_resolved']}"),
    ]


def test_bulk_acknowledge_through_the_desk(app, ingest):
    now = utcnow()
    storm = [add_alert(ingest, "test.plain", code, 1, opened=now) for code in ("1192A", "1193A")]
    red = add_alert(ingest, "env.pm25", "1188A", 4, opened=now)
    officer = client_of(app, "otto")
    response = post(
        officer,
        app,
        "desk-bulk-done",
        {"desk-bulk.n_clicks": 1},
        {"desk-shown.data": [*storm, red, "'; DROP TABLE alerts; --"], "desk-bulk-note.value": "rain storm"},
    )
    report = answer(response, "desk-bulk-done")
    assert (report["done"], report["too_severe"]) == (storm, [red])
    assert [alert_row(ingest, i).state for i in (*storm, red)] == ["acknowledged", "acknowledged", "active"]
    with ingest.sessions() as session:
        assert (
            session.scalar(select(AuditEntry).where(AuditEntry.target == f"alert:{storm[0]}")).detail
            == "bulk: rain storm"
        )


def test_the_list_refreshes_and_announces_new_red_alerts(app, ingest, mixed):
    officer = client_of(app, "otto")
    state = {"desk-version.data": -1, "desk-known.data": {}, "ui-lang.data": "en"}
    first = post(officer, app, "desk-list", {"desk-tick.n_intervals": 1}, state).get_json()["response"]
    assert "env.pm25 warning at 1188A" in json.dumps(first["desk-announce-text"])
    assert first["desk-alarm"]["data"]["severity"] == 4
    assert first["desk-announce"]["className"] == "announce active level-4"
    known = first["desk-known"]["data"]
    assert set(known) == {str(mixed["red_new"]), str(mixed["red_old"]), str(mixed["orange_ack"])}
    again = {**state, "desk-known.data": known}
    quiet = post(officer, app, "desk-list", {"desk-tick.n_intervals": 2}, again).get_json()["response"]
    assert "desk-announce-text" not in quiet and "desk-list" in quiet
    unchanged = {**again, "desk-version.data": first["desk-version"]["data"]}
    idle = post(officer, app, "desk-list", {"desk-tick.n_intervals": 3}, unchanged)
    assert idle.status_code == 204 or "desk-list" not in idle.get_json()["response"]
    # once every alert it called out is acknowledged, the banner goes away by itself
    assert act(officer, app, "ack", mixed["red_new"], "on it")["outcome"] == "done"
    alarm = {**again, "desk-alarm.data": first["desk-alarm"]["data"]}
    still = post(officer, app, "desk-list", {"desk-tick.n_intervals": 4}, alarm).get_json()["response"]
    assert "desk-announce" not in still
    assert act(officer, app, "ack", mixed["red_old"], "on it too")["outcome"] == "done"
    over = post(officer, app, "desk-list", {"desk-tick.n_intervals": 5}, alarm).get_json()["response"]
    assert (over["desk-announce"]["className"], over["desk-announce-text"]["children"]) == ("announce", [])


def test_notes_and_comments_are_rendered_as_text(app, ingest, mixed):
    officer = client_of(app, "otto")
    alert_id = mixed["orange_ack"]
    assert act(officer, app, "comment", alert_id, XSS)["outcome"] == "done"
    response = post(
        officer, app, "desk-panel-info", {"desk-selected.data": {"id": alert_id}}, {"ui-lang.data": "en"}
    )
    panel = answer(response, "desk-panel-info", "children")
    found = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("props", {}).get("children") == XSS:
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(panel)
    assert [(n["type"], n["namespace"]) for n in found] == [("P", "dash_html_components")]
    raw = response.data.decode()
    assert "dangerously_allow_html" not in raw and "Markdown" not in raw


def test_restricted_alerts_stay_out_of_reach_without_clearance(ingest, tmp_path, mixed):
    app = desk_app(
        ingest, tmp_path, clearance={"public": ["officer", "viewer", "admin"], "restricted": ["admin"]}
    )
    officer = client_of(app, "otto")
    state = {"desk-version.data": -1, "desk-known.data": {}, "ui-lang.data": "en"}
    listing = json.dumps(post(officer, app, "desk-list", {"desk-tick.n_intervals": 1}, state).get_json())
    assert "env.pm25 warning at 1188A" in listing
    assert "safety.crowd_density warning" not in listing
    assert act(officer, app, "ack", mixed["restricted"], "x")["outcome"] == "missing"
    assert alert_row(ingest, mixed["restricted"]).state == "active"
    admin = client_of(app, "ada")
    assert act(admin, app, "ack", mixed["restricted"], "seen")["outcome"] == "done"


WRITES = {
    "desk-ack-done": {"desk-ack.n_clicks": 1},
    "desk-assign-done": {"desk-assign.n_clicks": 1},
    "desk-comment-done": {"desk-comment.n_clicks": 1},
    "desk-close-done": {"desk-close.n_clicks": 1},
    "desk-bulk-done": {"desk-bulk.n_clicks": 1},
}


def test_forged_writes_are_refused_before_anything_is_written(app, ingest, mixed):
    with ingest.sessions() as session:
        _, plain = create_token(session, "display", "wall 1")
        session.commit()
    viewer = client_of(app, "vera")
    display = app.server.test_client()
    assert display.get(f"/screen?display={plain}").status_code == 200
    anonymous = app.server.test_client()
    before = events(ingest, mixed["red_new"])
    state = {
        "desk-selected.data": {"id": mixed["red_new"]},
        "desk-note.value": "forged",
        "desk-department.value": POLICE,
        "desk-shown.data": [mixed["red_new"]],
    }
    for client in (viewer, display, anonymous):
        for output_id, inputs in WRITES.items():
            refused = post(client, app, output_id, inputs, state)
            assert refused.status_code == 403, (output_id, refused.data)
        reads = post(client, app, "desk-list", {"desk-tick.n_intervals": 1}, {"ui-lang.data": "en"})
        assert reads.status_code in (401, 403)
        assert client.post("/_dash-update-component", json=router("/departments")).status_code == 403
    assert events(ingest, mixed["red_new"]) == before
    assert (
        client_of(app, "otto").post("/_dash-update-component", json=router("/departments")).status_code == 200
    )


def race(app, calls: dict) -> dict:
    """Each officer's request at the same moment, from its own thread."""
    clients = {name: client_of(app, name) for name in calls}
    barrier = threading.Barrier(len(calls))
    outcomes = {}

    def run(name):
        barrier.wait()
        outcomes[name] = calls[name](clients[name])

    threads = [threading.Thread(target=run, args=(name,)) for name in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def test_two_officers_acknowledge_at_once_and_one_is_told_who_won(app, ingest, mixed):
    alert_id = mixed["red_new"]
    outcomes = race(
        app,
        {name: (lambda c, n=name: act(c, app, "ack", alert_id, f"{n} on it")) for name in ("otto", "olga")},
    )
    done = [n for n, o in outcomes.items() if o["outcome"] == "done"]
    assert len(done) == 1, outcomes
    winner, loser = done[0], ({"otto", "olga"} - set(done)).pop()
    assert (outcomes[loser]["outcome"], outcomes[loser]["by"]) == ("conflict", winner)
    assert [e for e in events(ingest, alert_id) if e[0] == "acknowledged"] == [
        ("acknowledged", winner, f"{winner} on it")
    ]
    message = post(
        client_of(app, loser),
        app,
        "desk-action-status",
        {"desk-selected.data": {"id": alert_id}, "desk-ack-done.data": outcomes[loser]},
        {"ui-lang.data": "en"},
        changed=["desk-ack-done.data"],
    )
    assert f"{winner} acted on this alert first" in answer(message, "desk-action-status", "children")


def test_two_officers_assign_at_once_and_exactly_one_dispatch_is_recorded(app, ingest, mixed):
    alert_id = mixed["orange_ack"]
    seen = alert_row(ingest, alert_id).version
    targets = {"otto": POLICE, "olga": TEST}
    outcomes = race(
        app,
        {
            name: (
                lambda c, n=name: act(
                    c,
                    app,
                    "assign",
                    alert_id,
                    n,
                    **{"desk-department.value": targets[n], "desk-panel-version.data": seen},
                )
            )
            for name in targets
        },
    )
    done = [n for n, o in outcomes.items() if o["outcome"] == "done"]
    assert len(done) == 1, outcomes
    winner, loser = done[0], ({"otto", "olga"} - set(done)).pop()
    assert (outcomes[loser]["outcome"], outcomes[loser]["by"]) == ("conflict", winner)
    assigned = [e for e in events(ingest, alert_id) if e[0] == "assigned"]
    assert assigned == [("assigned", winner, f"{targets[winner]}\n{winner}")]
    assert alert_row(ingest, alert_id).department == targets[winner]


def test_the_departments_page_for_officers(app, ingest):
    now = utcnow()
    add_alert(ingest, "env.pm25", "1188A", 4, opened=now - timedelta(hours=1))
    officer = client_of(app, "otto")
    page = officer.post(
        "/_dash-update-component", json=router("/departments"), headers={"Accept-Language": "en"}
    )
    assert page.status_code == 200
    text = page.data.decode()
    assert "Ecology and Environment Bureau" in text
    assert "Overdue: open longer than I Red 30 min, II Orange 2 h, III Yellow 8 h, IV Blue 24 h" in text
    table = post(officer, app, "dept-table", {"dept-period.value": 30}, {"ui-lang.data": "en"})
    assert "/alerts?department=%E5%B8%82%E7%94%9F%E6%80%81%E7%8E%AF%E5%A2%83%E5%B1%80" in json.dumps(
        answer(table, "dept-table", "children")
    )
