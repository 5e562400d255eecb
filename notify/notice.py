"""What one notification says, independent of the channel that carries it.

A `Notice` is built at send time from the alert as it is then (its value, state and explanation)
and the event that caused the delivery; channels turn it into their own message formats.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from core.i18n import t
from core.levels import level
from core.settings import Names
from core.timeutil import local_text
from indicators.catalog import Indicator
from notify.settings import SEVERITY
from store.models import Alert, AlertEvent

LEVEL_NAMES = {severity: name for name, severity in SEVERITY.items()}
TIME_FORMAT = "%Y-%m-%d %H:%M"
ESCALATION = "escalation"


@dataclass(frozen=True)
class Notice:
    alert_id: int
    kind: str
    level: int
    state: str
    indicator: Indicator
    entity: str
    entity_name: Names | None
    value: float | None
    explanation: dict[str, str]
    department: str | None
    opened_at: datetime
    event_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    link: str | None
    minutes: int
    mention: tuple[str, ...]

    def headline(self, lang: str) -> str:
        return t(f"notify.kind.{self.kind}", lang, minutes=self.minutes)

    def title(self, lang: str) -> str:
        entity = self.entity_name.get(lang) if self.entity_name else self.entity
        return t(
            "notify.title",
            lang,
            level=t(level(self.level).short_key, lang),
            indicator=self.indicator.name.get(lang),
            entity=entity,
        )

    def value_text(self) -> str:
        if self.value is None:
            return "—"
        number = f"{self.value:.{self.indicator.decimals}f}"
        return f"{number} {self.indicator.unit}" if self.indicator.unit else number

    def facts(self, lang: str, zone: ZoneInfo) -> list[str]:
        """The short lines under the explanation: value, time, department."""
        department = self.department or self.indicator.department.get(lang)
        return [
            t("notify.value", lang, value=self.value_text()),
            t("notify.time", lang, time=local_text(self.event_at, zone, TIME_FORMAT)),
            t("notify.department", lang, department=department),
        ]

    def markdown(self, lang: str, zone: ZoneInfo) -> str:
        lines = [f"### {self.title(lang)}", f"**{self.headline(lang)}**", "", self.explanation[lang], ""]
        lines += [f"- {fact}" for fact in self.facts(lang, zone)]
        if self.link:
            lines += ["", f"[{t('notify.link', lang)}]({self.link})"]
        if self.mention:
            lines += ["", " ".join(f"@{who}" for who in self.mention)]
        return "\n".join(lines)

    def text(self, lang: str, zone: ZoneInfo) -> str:
        lines = [self.title(lang), self.headline(lang), self.explanation[lang], *self.facts(lang, zone)]
        if self.link:
            lines.append(self.link)
        return "\n".join(line for line in lines if line)

    def short(self, lang: str, limit: int) -> str:
        """One line for an SMS, cut to `limit` characters."""
        text = t("notify.sms", lang, headline=self.headline(lang), title=self.title(lang))
        text = f"{text} {self.explanation[lang]}".strip()
        return text if len(text) <= limit else text[: limit - 1] + "…"

    def as_json(self) -> dict[str, Any]:
        """The webhook's body: the alert with both languages' texts, times in ISO 8601 UTC."""

        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        names = self.indicator.name
        return {
            "id": self.alert_id,
            "kind": self.kind,
            "level": self.level,
            "level_name": LEVEL_NAMES.get(self.level, "normal"),
            "state": self.state,
            "indicator": self.indicator.key,
            "indicator_name": {"zh-CN": names.zh, "en": names.en},
            "domain": self.indicator.domain,
            "entity": self.entity,
            "entity_name": (
                {"zh-CN": self.entity_name.zh, "en": self.entity_name.en} if self.entity_name else None
            ),
            "value": self.value,
            "unit": self.indicator.unit,
            "explanation": dict(self.explanation),
            "department": self.department,
            "owner": {"zh-CN": self.indicator.department.zh, "en": self.indicator.department.en},
            "opened_at": iso(self.opened_at),
            "event_at": iso(self.event_at),
            "acknowledged_at": iso(self.acknowledged_at),
            "acknowledged_by": self.acknowledged_by,
            "link": self.link,
            "mention": list(self.mention),
        }


def notice(
    kind: str,
    alert: Alert,
    event: AlertEvent,
    indicator: Indicator,
    entity: str,
    entity_name: Names | None,
    base_url: str | None,
    target: str,
    now: datetime,
) -> Notice:
    """The notice of one delivery. An event's level is the one it moved to (for a resolution, the
    one it left); an escalation step speaks of the alert's level now and how long nobody acted."""
    if kind == ESCALATION:
        severity = alert.severity
    else:
        severity = event.to_severity or event.from_severity or alert.severity
    return Notice(
        alert_id=alert.id,
        kind=kind,
        level=severity,
        state=alert.state,
        indicator=indicator,
        entity=entity,
        entity_name=entity_name,
        value=alert.value,
        explanation={"zh-CN": alert.explanation_zh, "en": alert.explanation_en},
        department=alert.department,
        opened_at=alert.opened_at,
        event_at=event.at,
        acknowledged_at=alert.acknowledged_at,
        acknowledged_by=alert.acknowledged_by,
        link=f"{base_url}/alerts?alert={alert.id}" if base_url else None,
        minutes=max(0, int((now - event.at).total_seconds() // 60)),
        mention=tuple(who for who in target.split(",") if who),
    )
