"""Who hears of an alert: routes by level, domain and department, and the escalation chain's next step.

Pure functions over the settings and a `Subject` (what routing knows of one alert), so the outbox,
the escalation check and the tests share them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from indicators.catalog import Indicator
from notify.settings import EscalationChain, Match, NotificationSettings


@dataclass(frozen=True)
class Subject:
    level: int
    domain: str
    departments: frozenset[str]


def subject(level: int, indicator: Indicator, assigned: str | None) -> Subject:
    """An alert as routing sees it: its department is the one it was assigned to (派单) and the
    indicator's owning department, by either name."""
    names = {indicator.department.zh, indicator.department.en}
    if assigned:
        names.add(assigned)
    return Subject(level, indicator.domain, frozenset(name.casefold() for name in names))


def covers(rule: Match, about: Subject) -> bool:
    return (
        about.level >= rule.severity
        and (not rule.domains or about.domain in rule.domains)
        and (not rule.departments or any(d.casefold() in about.departments for d in rule.departments))
    )


def route(settings: NotificationSettings, kind: str, about: Subject) -> list[tuple[str, str]]:
    """(channel, target) pairs to notify of an event of `kind`, each once, in configuration order."""
    found: dict[tuple[str, str], None] = {}
    for rule in settings.routes:
        if kind in rule.events and covers(rule, about):
            for name in rule.channels:
                for target in settings.channels[name].targets():
                    found[(name, target)] = None
    return list(found)


def chain_for(settings: NotificationSettings, about: Subject) -> EscalationChain | None:
    """The first escalation chain that covers the alert."""
    return next((chain for chain in settings.escalation if covers(chain, about)), None)


def step_targets(settings: NotificationSettings, chain: EscalationChain, index: int) -> list[tuple[str, str]]:
    step = chain.steps[index]
    return [(step.channel, target) for target in settings.channels[step.channel].targets(step.to)]


def due_step(chain: EscalationChain, reached_at: datetime, done: list[datetime], now: datetime) -> int | None:
    """The step to notify now, if any: the first `after` the alert reached the chain's level, each
    next one `every` after the previous step went out; `done` holds when each earlier step did."""
    index = len(done)
    if index >= len(chain.steps):
        return None
    if index == 0:
        due = reached_at + timedelta(seconds=chain.after)
    else:
        due = done[-1] + timedelta(seconds=chain.every)
    return index if now >= due else None
