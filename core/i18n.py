"""Translations: every user-visible string is looked up here, in zh-CN and en.

The catalogs are YAML files mapping a message id to its text with `{name}` placeholders: the
shell's in core/locales/<lang>.yaml and one file per feature in core/locales/<lang>/<feature>.yaml
(so features keep their messages beside each other without editing one shared file). An id defined
twice is an error; a test fails when an id is missing in either language or used in the code without
being in the catalogs.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from core.settings import LANGUAGES

LOCALES = Path(__file__).resolve().parent / "locales"


def catalog_files(lang: str) -> list[Path]:
    """The catalog files of one language: the shell's first, then each feature's."""
    return [LOCALES / f"{lang}.yaml", *sorted((LOCALES / lang).glob("*.yaml"))]


@cache
def catalog(lang: str) -> dict[str, str]:
    """The flat message catalog of one language (loaded once per process)."""
    merged: dict[str, str] = {}
    for path in catalog_files(lang):
        with path.open(encoding="utf-8") as handle:
            messages = yaml.safe_load(handle) or {}
        repeated = sorted(set(messages) & set(merged))
        if repeated:
            raise ValueError(f"{path}: message ids already defined in another catalog file: {repeated}")
        merged.update(messages)
    return merged


def normalize_language(value: str | None, default: str = "zh-CN") -> str:
    """Map a browser language tag (`zh`, `zh-Hans-CN`, `en-GB`) onto a supported UI language."""
    if not value:
        return default
    tag = value.strip().lower()
    if tag.startswith("zh"):
        return "zh-CN"
    if tag.startswith("en"):
        return "en"
    return default


def negotiate(accept_language: str | None, default: str) -> str:
    """Pick the UI language from an Accept-Language header, in the browser's order of preference."""
    if not accept_language:
        return default
    ranked = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, position, tag))
    for _, _, tag in sorted(ranked):
        lang = normalize_language(tag, default="")
        if lang:
            return lang
    return default


def t(key: str, lang: str, **values: Any) -> str:
    """The text of message `key` in `lang`; a missing id shows itself instead of crashing a page."""
    lang = lang if lang in LANGUAGES else "zh-CN"
    text = catalog(lang).get(key)
    if text is None:
        return key
    return text.format(**values) if values else text
