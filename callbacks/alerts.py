"""/alerts callbacks: the duty desk's views from store.desk, and the officers' actions.

Reads refresh when the data version moves (every ingest and every officer's action bump it), so
two officers' desks agree within one tick. Each write is its own callback writing to its own store,
registered with `guard_outputs`, so the server refuses a forged request before this code runs; the
callback checks the permission again, acts through store.alerts / store.desk in one transaction
with its audit entry, and reports an outcome that a read callback turns into a message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

import flask
from dash import ClientsideFunction, Dash, Input, Output, State, ctx, no_update
from sqlalchemy.orm import Session
from werkzeug.exceptions import Forbidden

from callbacks.views import query_values
from core.access import Identity
from core.city import City
from core.i18n import t
from core.settings import Names
from core.timeutil import as_utc, local_text, utcnow
from indicators.catalog import DOMAINS, Catalog
from layouts.alerts import (
    DESK_LEVELS,
    ChartView,
    EventView,
    FilterChoice,
    ListView,
    Option,
    PanelView,
    RowView,
    alert_table,
    announcement,
    bulk_label,
    desk_page,
    level_counts,
    panel_info,
)
from layouts.components import format_value, level_text
from store import audit, desk, queries
from store.alerts import AlertConflict, acknowledge, close, comment
from store.state import bump_data_version, data_version
from web.auth import (
    current_clearance,
    current_identity,
    guard_outputs,
    page_allowed,
    require,
    visible_indicators,
)
from web.language import request_language
from web.runtime import WebRuntime

FILTERS = ("level", "domain", "district", "state", "department")
NOTE_LIMIT = 2000
BULK_LIMIT = 1000
STATE_KEYS = {
    "active": "desk.state.active",
    "acknowledged": "desk.state.acknowledged",
    "resolved": "desk.state.resolved",
    "closed": "desk.state.closed",
}
EVENT_KEYS = {
    "opened": "desk.event.opened",
    "escalated": "desk.event.escalated",
    "deescalated": "desk.event.deescalated",
    "resolved": "desk.event.resolved",
    "acknowledged": "desk.event.acknowledged",
    "commented": "desk.event.commented",
    "closed": "desk.event.closed",
    desk.ASSIGNED: "desk.event.assigned",
}
DONE_KEYS = {
    "alert.acknowledge": "desk.done.acknowledged",
    "alert.assign": "desk.done.assigned",
    "alert.comment": "desk.done.commented",
    "alert.close": "desk.done.closed",
}
PROBLEM_KEYS = {
    "note_required": "desk.error.note_required",
    "empty_note": "desk.error.empty_note",
    "no_department": "desk.error.no_department",
    "missing": "desk.error.missing",
}
DONE_STORES = {
    "alert.acknowledge": "desk-ack-done",
    "alert.assign": "desk-assign-done",
    "alert.comment": "desk-comment-done",
    "alert.close": "desk-close-done",
}


# --- departments and places from the catalog and the city ----------------------------------------


def department_names(catalog: Catalog) -> dict[str, Names]:
    """The catalog's owning departments, keyed by the name alerts are assigned to (the Chinese one)."""
    return {i.department.zh: i.department for i in catalog}


def owners(catalog: Catalog) -> dict[str, str]:
    """Indicator key -> its owning department's key."""
    return {i.key: i.department.zh for i in catalog}


def place_names(city: City) -> dict[str, Names]:
    names = {r.code: r.name for r in city.regions}
    names.update({s.code: s.name for s in city.stations})
    return names


def department_text(departments: Mapping[str, Names], key: str | None, lang: str) -> str:
    if key is None:
        return "—"
    names = departments.get(key)
    return names.get(lang) if names else key


def duration_text(span: timedelta, lang: str) -> str:
    """Like "12 min", "3 h 5 min" or "2 d 4 h": coarse enough to read at a glance."""
    minutes = int(span.total_seconds() // 60)
    if minutes < 60:
        return t("desk.age.minutes", lang, minutes=max(minutes, 0))
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        if not minutes:
            return t("desk.age.whole_hours", lang, hours=hours)
        return t("desk.age.hours", lang, hours=hours, minutes=minutes)
    days, hours = divmod(hours, 24)
    if not hours:
        return t("desk.age.whole_days", lang, days=days)
    return t("desk.age.days", lang, days=days, hours=hours)


# --- the desk's filters: URL query <-> dropdowns <-> store filter --------------------------------


@dataclass(frozen=True)
class DeskQuery:
    """The filters as the officer chose them (strings, as in the URL and the dropdowns)."""

    level: tuple[str, ...] = ()
    domain: tuple[str, ...] = ()
    district: tuple[str, ...] = ()
    state: tuple[str, ...] = ()
    department: tuple[str, ...] = ()


def filter_options(runtime: WebRuntime, lang: str, classes: tuple[str, ...]) -> dict[str, tuple[Option, ...]]:
    visible = visible_indicators(runtime, classes)
    domains = {i.domain for i in runtime.catalog if visible is None or i.key in visible}
    return {
        "level": tuple(Option(str(lvl.severity), t(lvl.name_key, lang)) for lvl in DESK_LEVELS),
        "domain": tuple(Option(d, t(f"domain.{d}", lang)) for d in DOMAINS if d in domains),
        "district": tuple(Option(r.code, r.name.get(lang)) for r in runtime.city.districts),
        "state": tuple(Option(s, t(STATE_KEYS[s], lang)) for s in desk.STATES),
        "department": tuple(
            Option(key, names.get(lang)) for key, names in department_names(runtime.catalog).items()
        ),
    }


PLACEHOLDERS = {
    "level": "desk.filter.any_level",
    "domain": "desk.filter.any_domain",
    "district": "desk.filter.any_district",
    "state": "desk.filter.default_states",
    "department": "desk.filter.any_department",
}


def parse_query(raw: Mapping[str, object], options: Mapping[str, tuple[Option, ...]]) -> DeskQuery:
    """Only values the dropdowns offer survive: a shared link cannot smuggle anything in."""
    return DeskQuery(
        **{
            name: tuple(v for v in query_values(raw.get(name)) if v in {o.value for o in options[name]})
            for name in FILTERS
        }
    )


def parse_alert_id(raw: object) -> int | None:
    try:
        value = int(str(raw))
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None


def filter_choices(query: DeskQuery, options: Mapping[str, tuple[Option, ...]]) -> tuple[FilterChoice, ...]:
    return tuple(
        FilterChoice(name, f"desk.filter.{name}", options[name], getattr(query, name), PLACEHOLDERS[name])
        for name in FILTERS
    )


def desk_filter(runtime: WebRuntime, query: DeskQuery, classes: tuple[str, ...]) -> desk.DeskFilter:
    visible = visible_indicators(runtime, classes)
    indicators = visible
    if query.domain:
        chosen = set(query.domain)
        indicators = frozenset(
            i.key for i in runtime.catalog if i.domain in chosen and (visible is None or i.key in visible)
        )
    return desk.DeskFilter(
        levels=tuple(int(v) for v in query.level),
        states=query.state,
        districts=query.district,
        departments=query.department,
        indicators=indicators,
    )


def share_link(query: DeskQuery, alert_id: int | None = None) -> str:
    """The desk's address with these filters, as the page writes it into the address bar."""
    parts = [
        f"{name}={','.join(quote(v, safe='') for v in getattr(query, name))}"
        for name in FILTERS
        if getattr(query, name)
    ]
    if alert_id is not None:
        parts.append(f"alert={alert_id}")
    return "/alerts" + ("?" + "&".join(parts) if parts else "")


# --- views ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Desk:
    """What the views need of the deployment, built once."""

    runtime: WebRuntime
    departments: dict[str, Names]
    owners: dict[str, str]
    places: dict[str, Names]

    @classmethod
    def of(cls, runtime: WebRuntime) -> Desk:
        return cls(
            runtime, department_names(runtime.catalog), owners(runtime.catalog), place_names(runtime.city)
        )

    def title(self, alert: desk.DeskAlert, lang: str) -> str:
        indicator = self.runtime.catalog.get(alert.indicator)
        name = indicator.name.get(lang) if indicator else alert.indicator
        place = self.places.get(alert.entity)
        return f"{name} · {place.get(lang) if place else alert.entity}"

    def value_text(self, alert: desk.DeskAlert, lang: str) -> str:
        indicator = self.runtime.catalog.get(alert.indicator)
        if indicator is None:
            return format_value(alert.value, 1)
        return f"{format_value(alert.value, indicator.decimals)} {indicator.unit_in(lang)}".strip()

    def responsible(self, alert: desk.DeskAlert) -> str | None:
        return alert.department or self.owners.get(alert.indicator)

    def state_text(self, alert: desk.DeskAlert, lang: str) -> str:
        if alert.state == "resolved" and alert.acknowledged_at is None:
            return t("desk.state.resolved_unacknowledged", lang)
        return t(STATE_KEYS.get(alert.state, "desk.state.closed"), lang)

    def row(self, alert: desk.DeskAlert, lang: str, now: datetime) -> RowView:
        department = department_text(self.departments, self.responsible(alert), lang)
        key = "desk.department.assigned" if alert.department else "desk.department.owner"
        zone = self.runtime.settings.tz
        return RowView(
            id=alert.id,
            severity=alert.severity,
            state=alert.state,
            state_text=self.state_text(alert, lang),
            title=self.title(alert, lang),
            explanation=alert.explanation_zh if lang == "zh-CN" else alert.explanation_en,
            value_text=self.value_text(alert, lang),
            department=t(key, lang, department=department),
            assigned=alert.department is not None,
            opened_text=local_text(alert.opened_at, zone),
            age_text=duration_text((alert.resolved_at or now) - alert.opened_at, lang),
            muted=alert.muted,
            can_acknowledge=alert.acknowledgeable,
        )

    def list_view(self, where: desk.DeskFilter, lang: str, limit: int = 300) -> ListView:
        engine = self.runtime.engine
        alerts, total = desk.desk_alerts(engine, where, self.owners, limit)
        now = utcnow()
        return ListView(
            rows=tuple(self.row(a, lang, now) for a in alerts),
            total=total,
            counts=desk.level_counts(engine, where, self.owners),
        )

    def chart(self, alert: desk.DeskAlert, lang: str, now: datetime) -> ChartView:
        start, end = desk.history_window(alert, now)
        points = queries.readings_between(
            self.runtime.engine, alert.indicator, start, end, entity=alert.entity, limit=5000
        )
        zone = self.runtime.settings.tz

        def local(at: datetime) -> datetime:
            return as_utc(at).astimezone(zone).replace(tzinfo=None)

        indicator = self.runtime.catalog.get(alert.indicator)
        thresholds = indicator.thresholds.limits() if indicator and indicator.thresholds else ()
        return ChartView(
            name=indicator.name.get(lang) if indicator else alert.indicator,
            unit=indicator.unit_in(lang) if indicator else "",
            times=tuple(local(p.observed_at) for p in points),
            values=tuple(p.value for p in points),
            thresholds=tuple(thresholds),
            opened_at=local(alert.opened_at),
            resolved_at=local(alert.resolved_at) if alert.resolved_at else None,
            severity=alert.peak_severity,
        )

    def event(self, entry: desk.TimelineEntry, lang: str) -> EventView:
        what = t(
            EVENT_KEYS.get(entry.kind, "desk.event.other"),
            lang,
            kind=entry.kind,
            before=level_text(entry.from_severity or 0, lang),
            after=level_text(entry.to_severity or 0, lang),
            department=department_text(self.departments, entry.department, lang),
        )
        actor = t("desk.actor.system", lang) if entry.actor == "system" else entry.actor
        return EventView(
            local_text(entry.at, self.runtime.settings.tz, "%m-%d %H:%M:%S"), actor, what, entry.note
        )

    def facts(self, alert: desk.DeskAlert, lang: str, now: datetime) -> tuple[tuple[str, str], ...]:
        zone = self.runtime.settings.tz
        facts = [
            (t("desk.fact.value", lang), self.value_text(alert, lang)),
            (
                t("desk.fact.opened", lang),
                f"{local_text(alert.opened_at, zone)} · {duration_text(now - alert.opened_at, lang)}",
            ),
        ]
        if alert.peak_severity > alert.severity:
            facts.append((t("desk.fact.peak", lang), level_text(alert.peak_severity, lang)))
        if alert.resolved_at:
            facts.append((t("desk.fact.resolved", lang), local_text(alert.resolved_at, zone)))
        acked = (
            t("desk.fact.by_at", lang, by=alert.acknowledged_by, time=local_text(alert.acknowledged_at, zone))
            if alert.acknowledged_at
            else t("desk.fact.not_yet", lang)
        )
        facts.append((t("desk.fact.acknowledged", lang), acked))
        department = department_text(self.departments, self.responsible(alert), lang)
        if alert.department:
            assigned = t(
                "desk.fact.assigned_by",
                lang,
                department=department,
                by=alert.assigned_by or "—",
                time=local_text(alert.assigned_at, zone),
            )
        else:
            assigned = t("desk.department.owner", lang, department=department)
        facts.append((t("desk.fact.department", lang), assigned))
        if alert.muted:
            facts.append((t("desk.muted", lang), t("desk.muted_help", lang)))
        return tuple(facts)

    def panel(self, alert: desk.DeskAlert, lang: str) -> PanelView:
        now = utcnow()
        return PanelView(
            id=alert.id,
            severity=alert.severity,
            state=alert.state,
            state_text=self.state_text(alert, lang),
            title=self.title(alert, lang),
            explanation=alert.explanation_zh if lang == "zh-CN" else alert.explanation_en,
            facts=self.facts(alert, lang, now),
            chart=self.chart(alert, lang, now),
            events=tuple(self.event(e, lang) for e in desk.timeline(self.runtime.engine, alert.id)),
            can_acknowledge=alert.acknowledgeable,
            can_comment=alert.state != "closed",
            can_close=alert.state == "resolved",
            can_assign=alert.is_open,
            note_required=desk.note_required(alert.severity),
            department=alert.department,
            version=alert.version,
        )


def note_hint(panel: PanelView) -> str:
    """What the note field is for with this alert as it is now."""
    if not panel.can_acknowledge:
        return "desk.note.after"
    return "desk.note.required" if panel.note_required else "desk.note.hint"


def banner_over(alarm: object, urgent: list[desk.DeskAlert]) -> bool:
    """The banner's alerts have all been acknowledged (or resolved): nothing left to call out."""
    shown = alarm.get("ids") if isinstance(alarm, dict) else None
    return bool(shown) and not {a.id for a in urgent if a.state == "active"} & set(shown)


def urgent_news(
    alerts: list[desk.DeskAlert], known: Mapping[str, int]
) -> tuple[list[desk.DeskAlert], dict[str, int]]:
    """The orange and red alerts not yet announced at their level, and what is known afterwards.

    An alert is announced again only when it escalates past the level it was announced at.
    """
    news = [a for a in alerts if a.severity > known.get(str(a.id), 0)]
    return news, {str(a.id): max(a.severity, known.get(str(a.id), 0)) for a in alerts}


# --- writes --------------------------------------------------------------------------------------


def outcome(action: str, alert_id: int | None, result: str, **extra: object) -> dict:
    """What a write reports to the page ("at" makes every report a change, even a repeated one)."""
    return {"action": action, "alert": alert_id, "outcome": result, "at": time.time(), **extra}


def _note(raw: object) -> str:
    return str(raw or "").strip()[:NOTE_LIMIT]


def _address() -> str:
    if not flask.has_request_context():
        return ""
    return flask.request.remote_addr or ""


Work = Callable[[Session, desk.DeskAlert, Identity], str]


def perform(
    runtime: WebRuntime,
    action: str,
    alert_id: int | None,
    work: Work,
    check: Callable[[desk.DeskAlert], str | None] | None = None,
) -> dict:
    """Run one officer's action on one alert the requester may see, with its audit entry, in one
    transaction. `check` may refuse it first (a problem code); a conflict reports who acted first."""
    identity = require(action)
    visible = visible_indicators(runtime, current_clearance())
    alert = desk.desk_alert(runtime.engine, alert_id, visible) if alert_id is not None else None
    if alert is None:
        return outcome(action, alert_id, "missing")
    problem = check(alert) if check else None
    if problem:
        return outcome(action, alert_id, problem)
    with Session(runtime.engine) as session:
        try:
            detail = work(session, alert, identity)
        except AlertConflict as conflict:
            session.rollback()
            return outcome(action, alert_id, "conflict", by=conflict.by, state=conflict.state)
        audit.record(session, identity.name, action, f"alert:{alert.id}", detail, _address())
        bump_data_version(session)
        session.commit()
    return outcome(action, alert_id, "done")


def fired_inputs() -> set[str]:
    """Every input that set the callback off: Dash sends changes that arrive together in one
    call, so an officer's outcome and the next refresh can come at once."""
    return {str(component) for component in (ctx.triggered_prop_ids or {}).values()}


def _selected_id(selected: object) -> int | None:
    return parse_alert_id(selected.get("id")) if isinstance(selected, dict) else None


def _require_desk() -> None:
    """Reads of the desk are for those who may open it (a forged read is refused too)."""
    if not page_allowed("/alerts", current_identity()):
        raise Forbidden("the duty desk is for duty officers")


def outcome_message(desk_view: Desk, report: dict, lang: str) -> str:
    result = report.get("outcome")
    if result == "done":
        department = department_text(desk_view.departments, report.get("department"), lang)
        return t(
            DONE_KEYS.get(report.get("action", ""), "desk.done.acknowledged"), lang, department=department
        )
    if result == "conflict":
        by = report.get("by") or t("desk.actor.someone", lang)
        if by == "system":
            by = t("desk.actor.system", lang)
        state = t(STATE_KEYS.get(report.get("state", ""), "desk.state.closed"), lang)
        return t("desk.conflict", lang, by=by, state=state)
    return t(PROBLEM_KEYS.get(str(result), "desk.error.missing"), lang)


def bulk_message(report: dict, lang: str) -> str:
    parts = [t("desk.bulk.done", lang, count=len(report.get("done", [])))]
    if report.get("too_severe"):
        parts.append(t("desk.bulk.too_severe", lang, count=len(report["too_severe"])))
    if report.get("taken"):
        parts.append(t("desk.bulk.taken", lang, count=len(report["taken"])))
    return " ".join(parts)


# --- registration --------------------------------------------------------------------------------


def register(app: Dash, runtime: WebRuntime) -> dict:
    refresh_ms = int(runtime.settings.screen.refresh * 1000)
    default = runtime.settings.default_language
    view = Desk.of(runtime)
    engine = runtime.engine
    guard_outputs("alert.acknowledge", "desk-ack-done", "desk-bulk-done")
    guard_outputs("alert.assign", "desk-assign-done")
    guard_outputs("alert.comment", "desk-comment-done")
    guard_outputs("alert.close", "desk-close-done")

    def current_query(values: list, lang: str, classes: tuple[str, ...]) -> DeskQuery:
        options = filter_options(runtime, lang, classes)
        return parse_query(dict(zip(FILTERS, values, strict=True)), options)

    def page(lang: str | None = None, **query) -> object:
        lang = request_language(default, lang)
        classes = current_clearance()
        options = filter_options(runtime, lang, classes)
        chosen = parse_query(query, options)
        visible = visible_indicators(runtime, classes)
        _, known = urgent_news(desk.urgent(engine, visible), {})  # what is there already is not news
        return desk_page(
            view.list_view(desk_filter(runtime, chosen, classes), lang),
            filter_choices(chosen, options),
            options["department"],
            data_version(engine),
            known,
            parse_alert_id(query.get("alert")),
            lang,
            refresh_ms,
        )

    @app.callback(
        Output("desk-list", "children"),
        Output("desk-counts", "children"),
        Output("desk-shown", "data"),
        Output("desk-bulk", "children"),
        Output("desk-bulk", "disabled"),
        Output("desk-version", "data"),
        Output("desk-known", "data"),
        Output("desk-announce-text", "children"),
        Output("desk-announce", "className"),
        Output("desk-dismiss", "hidden"),
        Output("desk-alarm", "data"),
        Output("desk-bulk-status", "children"),
        Input("desk-tick", "n_intervals"),
        *(Input(f"desk-f-{name}", "value") for name in FILTERS),
        Input("desk-dismiss", "n_clicks"),
        Input("desk-bulk-done", "data"),
        State("desk-version", "data"),
        State("desk-known", "data"),
        State("desk-alarm", "data"),
        State("ui-lang", "data"),
        prevent_initial_call=True,
    )
    def refresh(_tick, *args):
        *values, _dismiss, bulk_report, shown_version, known, alarm, lang = args
        _require_desk()
        lang = request_language(default, lang)
        fired = fired_inputs()
        quiet = (no_update,) * 12
        if "desk-dismiss" in fired:
            return (*quiet[:7], [], "announce", True, no_update, no_update)
        version = data_version(engine)
        if fired == {"desk-tick"} and version == shown_version:
            return quiet
        classes = current_clearance()
        listed = view.list_view(desk_filter(runtime, current_query(values, lang, classes), classes), lang)
        urgent = desk.urgent(engine, visible_indicators(runtime, classes))
        news, known = urgent_news(urgent, known or {})
        banner: tuple = (no_update,) * 4
        if news:
            now = utcnow()
            top = max(a.severity for a in news)
            shown = news[:3]
            banner = (
                announcement([view.row(a, lang, now) for a in shown], lang),
                f"announce active level-{top}",
                False,
                {"severity": top, "ids": [a.id for a in shown], "at": time.time()},
            )
        elif banner_over(alarm, urgent):
            banner = ([], "announce", True, {})
        status = bulk_message(bulk_report, lang) if "desk-bulk-done" in fired and bulk_report else no_update
        return (
            alert_table(listed, lang),
            level_counts(listed.counts, lang),
            listed.bulk_ids,
            bulk_label(len(listed.bulk_ids), lang),
            not listed.bulk_ids,
            version,
            known,
            *banner,
            status,
        )

    @app.callback(
        Output("desk-panel-info", "children"),
        Output("desk-panel-empty", "hidden"),
        Output("desk-actions", "hidden"),
        Output("desk-ack", "hidden"),
        Output("desk-comment", "hidden"),
        Output("desk-close", "hidden"),
        Output("desk-assign-row", "hidden"),
        Output("desk-note-hint", "children"),
        Output("desk-panel-version", "data"),
        Output("desk-department", "value"),
        Output("desk-note", "value"),
        Output("desk-action-status", "children"),
        Output("desk-focus", "data"),
        Input("desk-selected", "data"),
        Input("desk-version", "data"),
        *(Input(store, "data") for store in DONE_STORES.values()),
        State("ui-lang", "data"),
    )
    def show_panel(selected, _version, *args):
        *reports, lang = args
        _require_desk()
        lang = request_language(default, lang)
        fired = fired_inputs()
        report = next((r for r in reports if r and DONE_STORES.get(r.get("action")) in fired), None)
        if report and report.get("outcome") not in ("done", "conflict"):
            return (no_update,) * 11 + (outcome_message(view, report, lang), no_update)
        alert_id = _selected_id(selected)
        visible = visible_indicators(runtime, current_clearance())
        alert = desk.desk_alert(engine, alert_id, visible) if alert_id is not None else None
        if alert is None:
            empty = ([], False, True, True, True, True, True, "", None, None, "")
            status = t("desk.error.missing", lang) if alert_id is not None else ""
            return (*empty, status, no_update)
        panel = view.panel(alert, lang)
        flags = (
            panel_info(panel, lang),
            True,
            False,
            not panel.can_acknowledge,
            not panel.can_comment,
            not panel.can_close,
            not panel.can_assign,
            t(note_hint(panel), lang),
            panel.version,
        )
        if fired == {"desk-version"}:
            return (*flags, no_update, no_update, no_update, no_update)
        if report is not None:
            note = "" if report["outcome"] == "done" else no_update
            return (*flags, panel.department, note, outcome_message(view, report, lang), no_update)
        focus = {"at": time.time()} if selected.get("focus") else no_update
        return (*flags, panel.department, "", "", focus)

    def write_callback(action: str, button: str, *states: State) -> Callable:
        return app.callback(
            Output(DONE_STORES[action], "data"),
            Input(button, "n_clicks"),
            State("desk-selected", "data"),
            State("desk-note", "value"),
            *states,
            prevent_initial_call=True,
        )

    @write_callback("alert.acknowledge", "desk-ack")
    def do_acknowledge(clicks, selected, note):
        if not clicks:
            return no_update
        require("alert.acknowledge")
        note = _note(note)

        def check(alert: desk.DeskAlert) -> str | None:
            return "note_required" if desk.note_required(alert.severity) and not note else None

        def work(session: Session, alert: desk.DeskAlert, identity: Identity) -> str:
            acknowledge(session, alert.id, identity.name, note)
            return note

        return perform(runtime, "alert.acknowledge", _selected_id(selected), work, check)

    @write_callback("alert.comment", "desk-comment")
    def do_comment(clicks, selected, note):
        if not clicks:
            return no_update
        require("alert.comment")
        note = _note(note)
        if not note:
            return outcome("alert.comment", _selected_id(selected), "empty_note")

        def work(session: Session, alert: desk.DeskAlert, identity: Identity) -> str:
            comment(session, alert.id, identity.name, note)
            return note

        return perform(runtime, "alert.comment", _selected_id(selected), work)

    @write_callback("alert.close", "desk-close")
    def do_close(clicks, selected, note):
        if not clicks:
            return no_update
        note = _note(note)

        def work(session: Session, alert: desk.DeskAlert, identity: Identity) -> str:
            close(session, alert.id, identity.name, note)
            return note

        return perform(runtime, "alert.close", _selected_id(selected), work)

    @write_callback(
        "alert.assign", "desk-assign", State("desk-department", "value"), State("desk-panel-version", "data")
    )
    def do_assign(clicks, selected, note, department, version):
        if not clicks:
            return no_update
        require("alert.assign")
        alert_id = _selected_id(selected)
        if not isinstance(department, str) or department not in view.departments:
            return outcome("alert.assign", alert_id, "no_department")
        note = _note(note)
        seen = version if isinstance(version, int) else None

        def work(session: Session, alert: desk.DeskAlert, identity: Identity) -> str:
            desk.assign(session, alert.id, department, identity.name, note, version=seen)
            return f"{department}: {note}" if note else department

        return {**perform(runtime, "alert.assign", alert_id, work), "department": department}

    @app.callback(
        Output("desk-bulk-done", "data"),
        Input("desk-bulk", "n_clicks"),
        State("desk-shown", "data"),
        State("desk-bulk-note", "value"),
        prevent_initial_call=True,
    )
    def do_bulk(clicks, shown, note):
        if not clicks:
            return no_update
        identity = require("alert.acknowledge")
        ids = [parse_alert_id(i) for i in (shown if isinstance(shown, list) else [])][:BULK_LIMIT]
        note = _note(note)
        with Session(engine) as session:
            result = desk.bulk_acknowledge(
                session,
                [i for i in ids if i is not None],
                identity.name,
                note,
                visible_indicators(runtime, current_clearance()),
            )
            for alert_id in result.done:
                audit.record(
                    session,
                    identity.name,
                    "alert.acknowledge",
                    f"alert:{alert_id}",
                    f"bulk: {note}",
                    _address(),
                )
            if result.done:
                bump_data_version(session)
            session.commit()
        return {
            "done": list(result.done),
            "too_severe": list(result.too_severe),
            "taken": [str(i) for i in result.taken],
            "at": time.time(),
        }

    app.clientside_callback(
        ClientsideFunction(namespace="citybrainDesk", function_name="syncUrl"),
        Output("desk-url", "data"),
        *(Input(f"desk-f-{name}", "value") for name in FILTERS),
        Input("desk-selected", "data"),
    )
    app.clientside_callback(
        ClientsideFunction(namespace="citybrainDesk", function_name="toggleSound"),
        Output("desk-sound-on", "data"),
        Output("desk-sound", "children"),
        Output("desk-sound", "aria-pressed"),
        Input("desk-sound", "n_clicks"),
        State("desk-sound-on", "data"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        ClientsideFunction(namespace="citybrainDesk", function_name="announce"),
        Output("desk-played", "data"),
        Input("desk-alarm", "data"),
        State("desk-sound-on", "data"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        ClientsideFunction(namespace="citybrainDesk", function_name="focusNote"),
        Output("desk-focused", "data"),
        Input("desk-focus", "data"),
        prevent_initial_call=True,
    )
    return {"alerts": page}
