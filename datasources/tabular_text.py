"""Reading the cells of departments' files: text encodings, timestamps and numbers.

Chinese government systems export GBK or GB18030 as often as UTF-8, write times as
"2024/3/1 8:00" or "2024年3月1日 8时", and format numbers with thousands separators or
full-width digits. These helpers turn such cells into UTC datetimes and floats, and return None
for a cell they cannot read, so the caller can pass the cell's text on to validation, which
rejects it with a reason instead of the row vanishing.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from charset_normalizer import from_bytes

from core.timeutil import as_utc

EPOCH_FORMATS = ("epoch", "epoch_ms")

# Longest BOM first: the UTF-32 LE mark begins with the UTF-16 LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# GB18030 is a byte-compatible superset of GB2312 and GBK: a file labelled either may still hold
# characters only GB18030 encodes (rare given names, place names), so all are read as GB18030.
_GB_FAMILY = frozenset({"gb2312", "gbk", "gb18030", "hz", "cp936"})

# 2024/03/01 08:00, 2024-3-1 8:00:00, 2024.03.01, 2024年3月1日 8时, 2024年3月1日8时30分15秒
_CHINESE_TIME = re.compile(
    r"(?P<year>\d{4})\s*[年/.\-]\s*(?P<month>\d{1,2})\s*[月/.\-]\s*(?P<day>\d{1,2})\s*[日号]?"
    r"(?:[T\s]*(?P<hour>\d{1,2})\s*(?:[时点:]\s*"
    r"(?:(?P<minute>\d{1,2})\s*(?:[分:]\s*(?:(?P<second>\d{1,2}(?:\.\d+)?)\s*秒?)?)?)?)?)?"
)
_GROUPED_NUMBER = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?")


def canonical_encoding(name: str) -> str:
    """The codec to read a file labelled `name` with; LookupError for an unknown encoding."""
    codec = codecs.lookup(name).name
    return "gb18030" if codec in _GB_FAMILY else codec


def detect_encoding(data: bytes) -> str:
    """A byte-order mark, else UTF-8 if the bytes are valid UTF-8, else a GB encoding if the
    detector considers one at all (short Chinese files are often guessed as Korean cp949), else
    the detector's best guess."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    guesses = [match.encoding for match in from_bytes(data)]
    if any(canonical_encoding(guess) == "gb18030" for guess in guesses) and _decodes(data, "gb18030"):
        return "gb18030"
    if not guesses:
        raise ValueError("cannot tell the text encoding; set the encoding option")
    return guesses[0]


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def decode_text(data: bytes, encoding: str | None = None) -> str:
    """The file's text in the given encoding (else detected), without a byte-order mark."""
    name = canonical_encoding(encoding) if encoding else detect_encoding(data)
    try:
        text = data.decode(name)
    except UnicodeDecodeError as exc:
        hint = "" if encoding else "; set the encoding option"
        raise ValueError(f"not valid {name} text (byte {exc.start}){hint}") from None
    return text.removeprefix("\ufeff")


def normalize(text: str) -> str:
    """Full-width digits, letters, colons and spaces as their ASCII forms, trimmed (NFKC)."""
    return unicodedata.normalize("NFKC", text).strip()


def cell_text(value: object) -> str:
    """A cell as text: blank for None, whole numbers without ".0" (an Excel code 320211)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return str(value)


def is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def read_timestamp(value: object, zone: ZoneInfo, formats: Sequence[str] = ()) -> datetime | None:
    """A cell as an aware UTC datetime, or None if it is no time.

    `formats` (strptime patterns, or "epoch" / "epoch_ms" for Unix times) are tried first, then
    ISO-8601 and the common Chinese forms. Naive times are wall-clock times in `zone`. A number
    is a time only under an epoch format: a bare Excel serial number is no Unix time.
    """
    if isinstance(value, datetime):
        return as_utc(value, zone)
    if isinstance(value, date):
        return as_utc(datetime.combine(value, time()), zone)
    if value is None or isinstance(value, bool):
        return None
    text = normalize(cell_text(value))
    if not text:
        return None
    for fmt in formats:
        found = _epoch(text, fmt) if fmt in EPOCH_FORMATS else _strptime(text, fmt, zone)
        if found is not None:
            return found
    try:
        return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")), zone)
    except ValueError:
        pass
    return _chinese_time(text, zone)


def _epoch(text: str, fmt: str) -> datetime | None:
    try:
        seconds = float(text) / (1000.0 if fmt == "epoch_ms" else 1.0)
        return datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _strptime(text: str, fmt: str, zone: ZoneInfo) -> datetime | None:
    try:
        return as_utc(datetime.strptime(text, fmt), zone)
    except ValueError:
        return None


def _chinese_time(text: str, zone: ZoneInfo) -> datetime | None:
    """The Chinese forms; hour 24 (end of the day, as some hourly reports write) is the next 0:00."""
    match = _CHINESE_TIME.fullmatch(text)
    if match is None:
        return None
    parts = match.groupdict()
    hour, minute = int(parts["hour"] or 0), int(parts["minute"] or 0)
    second = float(parts["second"] or 0)
    extra = timedelta()
    if hour == 24 and minute == 0 and second == 0:
        hour, extra = 0, timedelta(days=1)
    try:
        moment = datetime(int(parts["year"]), int(parts["month"]), int(parts["day"]), hour, minute)
    except ValueError:
        return None
    if second >= 60:
        return None
    return as_utc(moment + extra + timedelta(seconds=second), zone)


def read_number(value: object) -> float | None:
    """A cell as a float, or None if it is no number; "1,234.5" and "１２" are numbers.

    NaN and infinity come back as floats, for validation to reject with its own reason.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        return None
    text = normalize(value)
    if _GROUPED_NUMBER.fullmatch(text):
        text = text.replace(",", "")
    try:
        return float(text)
    except ValueError:
        return None
