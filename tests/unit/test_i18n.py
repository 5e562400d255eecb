"""Every message exists in both languages, and every message the code uses exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.i18n import catalog, negotiate, normalize_language, t

REPO = Path(__file__).resolve().parents[2]
CODE_DIRS = ("layouts", "callbacks", "web", "indicators", "core", "ingest", "store", "datasources", "notify")
LITERAL_KEY = re.compile(r"""\bt\(\s*["']([a-z_]+\.[a-z0-9_.]+)["']""")


def used_keys() -> set[str]:
    keys = set()
    for folder in CODE_DIRS:
        for path in (REPO / folder).rglob("*.py"):
            keys |= set(LITERAL_KEY.findall(path.read_text(encoding="utf-8")))
    return keys


def test_both_languages_have_the_same_messages():
    assert set(catalog("en")) == set(catalog("zh-CN"))


def test_placeholders_agree_between_languages():
    fields = re.compile(r"{(\w+)}")
    for key, text in catalog("en").items():
        assert set(fields.findall(text)) == set(fields.findall(catalog("zh-CN")[key])), key


def test_every_key_used_in_code_is_in_the_catalogs():
    keys = used_keys()
    assert len(keys) > 10
    missing = keys - set(catalog("en"))
    assert not missing, f"missing from the catalogs: {sorted(missing)}"


def test_dynamic_keys_exist():
    from core.levels import LEVELS
    from indicators.catalog import DOMAINS
    from indicators.evaluation import EXPLAIN_KEYS
    from layouts.components import TREND_KEYS
    from layouts.pages import PAGES

    dynamic = (
        [f"domain.{d}" for d in DOMAINS]
        + [lvl.name_key for lvl in LEVELS]
        + [lvl.short_key for lvl in LEVELS]
    )
    dynamic += list(EXPLAIN_KEYS.values()) + list(TREND_KEYS.values()) + [p[2] for p in PAGES]
    for key in dynamic:
        assert key in catalog("en") and key in catalog("zh-CN"), key


def test_translation_with_values():
    assert t("screen.delayed", "en", minutes=12) == "delayed 12 min"
    assert t("screen.delayed", "zh-CN", minutes=12) == "数据延迟 12 分钟"


@pytest.mark.parametrize(
    "header, expected",
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
        ("en-GB,en;q=0.9", "en"),
        ("fr-FR, en;q=0.5", "en"),
        ("de-DE", "zh-CN"),
        (None, "zh-CN"),
        ("en;q=0.2, zh-Hans;q=0.9", "zh-CN"),
    ],
)
def test_accept_language_negotiation(header, expected):
    assert negotiate(header, "zh-CN") == expected


def test_normalize_language():
    assert normalize_language("zh-Hant-TW") == "zh-CN"
    assert normalize_language("EN-us") == "en"
    assert normalize_language("ja", default="en") == "en"


def test_feature_catalogs_pair_up_between_languages():
    from core.i18n import catalog_files

    names = {lang: [p.name for p in catalog_files(lang)[1:]] for lang in ("en", "zh-CN")}
    assert names["en"] == names["zh-CN"]
