"""Kernel density on a regular grid: how a per-place value (calls per district, readings per station)
spreads over the map when the data has no finer locations than the place itself.

Each place's weight is spread by a Gaussian kernel and integrated exactly over every cell (products of
error-function differences), so the grid holds mass, not samples of a curve: the cells add up to the
total weight except for what falls beyond the grid's edge, a single place peaks in its own cell, and
a coarse grid never misses a narrow kernel. Distances are in kilometres on a local equirectangular
projection around the grid's centre, which is exact enough at city scale (a few hundred km).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

KM_PER_DEGREE = 111.32
Box = tuple[float, float, float, float]  # west, south, east, north


@dataclass(frozen=True)
class Place:
    """A weight at a point (WGS84 degrees)."""

    lon: float
    lat: float
    weight: float


@dataclass(frozen=True)
class Grid:
    """`rows` x `columns` square cells of `cell_km`, the first row at the south, the first column at
    the west edge."""

    west: float
    south: float
    cell_km: float
    columns: int
    rows: int

    @property
    def km_per_degree_lon(self) -> float:
        centre_lat = self.south + self.rows * self.cell_km / KM_PER_DEGREE / 2
        return KM_PER_DEGREE * math.cos(math.radians(centre_lat))

    @property
    def cell_lon(self) -> float:
        return self.cell_km / self.km_per_degree_lon

    @property
    def cell_lat(self) -> float:
        return self.cell_km / KM_PER_DEGREE

    @property
    def cell_area_km2(self) -> float:
        return self.cell_km**2

    def cell_of(self, lon: float, lat: float) -> tuple[int, int] | None:
        """(row, column) of the cell holding the point, None outside the grid."""
        column = math.floor((lon - self.west) / self.cell_lon)
        row = math.floor((lat - self.south) / self.cell_lat)
        if 0 <= row < self.rows and 0 <= column < self.columns:
            return row, column
        return None

    def cell_box(self, row: int, column: int) -> Box:
        """(west, south, east, north) of a cell in degrees."""
        west = self.west + column * self.cell_lon
        south = self.south + row * self.cell_lat
        return west, south, west + self.cell_lon, south + self.cell_lat


def grid_over(
    south: float, west: float, north: float, east: float, *, long_side_cells: int, margin_km: float
) -> Grid:
    """A grid covering the box plus a margin (so kernels near the edge are not cut off), with
    `long_side_cells` cells along its longer side."""
    if north <= south or east <= west:
        raise ValueError("the box must have a positive extent")
    if long_side_cells < 1 or margin_km < 0:
        raise ValueError("long_side_cells must be at least 1 and margin_km not negative")
    centre_lat = (south + north) / 2
    km_lon = KM_PER_DEGREE * math.cos(math.radians(centre_lat))
    width_km = (east - west) * km_lon + 2 * margin_km
    height_km = (north - south) * KM_PER_DEGREE + 2 * margin_km
    cell_km = max(width_km, height_km) / long_side_cells
    columns = max(1, math.ceil(width_km / cell_km))
    rows = max(1, math.ceil(height_km / cell_km))
    # centre the grid on the box: the cells overhang both sides equally
    west_edge = (west + east) / 2 - columns * cell_km / km_lon / 2
    south_edge = centre_lat - rows * cell_km / KM_PER_DEGREE / 2
    return Grid(west_edge, south_edge, cell_km, columns, rows)


_erf = np.vectorize(math.erf, otypes=[float])


def _normal_cdf(values: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + _erf(values / math.sqrt(2.0)))


def _cell_shares(edges_km: np.ndarray, centres_km: np.ndarray, bandwidth_km: float) -> np.ndarray:
    """(places, cells): the share of each place's 1-D kernel that falls in each interval."""
    cdf = _normal_cdf((edges_km[np.newaxis, :] - centres_km[:, np.newaxis]) / bandwidth_km)
    return np.clip(np.diff(cdf, axis=1), 0.0, None)


def kernel_mass(grid: Grid, places: Sequence[Place], bandwidth_km: float) -> np.ndarray:
    """(rows, columns) array of the weight each cell receives; it sums to the total weight less
    what the kernels put beyond the grid."""
    if bandwidth_km <= 0:
        raise ValueError("bandwidth_km must be positive")
    if any(p.weight < 0 or not math.isfinite(p.weight) for p in places):
        raise ValueError("weights must be finite and not negative")
    if not places:
        return np.zeros((grid.rows, grid.columns))
    km_lon = grid.km_per_degree_lon
    x = np.array([(p.lon - grid.west) * km_lon for p in places])
    y = np.array([(p.lat - grid.south) * KM_PER_DEGREE for p in places])
    weights = np.array([p.weight for p in places])
    across = _cell_shares(np.arange(grid.columns + 1) * grid.cell_km, x, bandwidth_km)
    along = _cell_shares(np.arange(grid.rows + 1) * grid.cell_km, y, bandwidth_km)
    # the 2-D kernel is the product of its 1-D parts: sum over places of w * outer(along, across)
    return (along * weights[:, np.newaxis]).T @ across


def cells_above(grid: Grid, mass: np.ndarray, floor: float) -> list[tuple[Box, float]]:
    """(box, mass) of the cells holding at least `floor`: the faint fringe is not worth drawing."""
    rows, columns = np.nonzero(mass >= floor)
    return [(grid.cell_box(int(r), int(c)), float(mass[r, c])) for r, c in zip(rows, columns, strict=True)]
