"""The heat layer's kernel density: mass is conserved up to the grid's edge, never negative, and a
single place peaks in its own cell, wherever it lies and however narrow or wide its kernel."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.density import KM_PER_DEGREE, Grid, Place, cells_above, grid_over, kernel_mass

# Wuxi's districts, as the demo ships them
BOX = (31.11093, 119.51458, 31.99266, 120.60157)  # south, west, north, east
GRID = grid_over(*BOX, long_side_cells=48, margin_km=8)

lons = st.floats(min_value=BOX[1], max_value=BOX[3])
lats = st.floats(min_value=BOX[0], max_value=BOX[2])
weights = st.floats(min_value=0, max_value=5000, allow_nan=False)
places = st.lists(st.builds(Place, lons, lats, weights), max_size=25)
bandwidths = st.floats(min_value=0.05, max_value=30)


def wide_grid(margin_km: float) -> Grid:
    return grid_over(*BOX, long_side_cells=40, margin_km=margin_km)


@settings(max_examples=60, deadline=None)
@given(places, bandwidths)
def test_mass_is_never_negative_and_never_more_than_the_weights(spread, bandwidth):
    mass = kernel_mass(GRID, spread, bandwidth)
    assert mass.shape == (GRID.rows, GRID.columns)
    assert (mass >= 0).all()
    total = sum(p.weight for p in spread)
    assert mass.sum() <= total * (1 + 1e-9) + 1e-9


@settings(max_examples=60, deadline=None)
@given(places, st.floats(min_value=0.05, max_value=8))
def test_mass_is_conserved_when_the_kernels_fit_inside_the_grid(spread, bandwidth):
    """Eight bandwidths of margin leave less than 1e-15 of a Gaussian outside: nothing is lost."""
    grid = wide_grid(margin_km=8 * bandwidth + 1)
    total = sum(p.weight for p in spread)
    assert kernel_mass(grid, spread, bandwidth).sum() == pytest.approx(total, rel=1e-9, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.builds(Place, lons, lats, st.floats(min_value=1, max_value=100)))
def test_what_the_grid_cuts_is_the_kernel_beyond_its_edge(place):
    """With no margin a place near the edge loses part of its kernel; the part lost matches the
    Gaussian's tails beyond the grid's four edges (computed here independently)."""
    grid = grid_over(*BOX, long_side_cells=30, margin_km=0)
    bandwidth = 6.0
    x = (place.lon - grid.west) * grid.km_per_degree_lon
    y = (place.lat - grid.south) * KM_PER_DEGREE

    def inside(at: float, length: float) -> float:
        def phi(v: float) -> float:
            return 0.5 * (1 + math.erf(v / bandwidth / math.sqrt(2)))

        return phi(length - at) - phi(-at)

    expected = place.weight * inside(x, grid.columns * grid.cell_km) * inside(y, grid.rows * grid.cell_km)
    assert kernel_mass(grid, [place], bandwidth).sum() == pytest.approx(expected, rel=1e-9)


@settings(max_examples=80, deadline=None)
@given(st.builds(Place, lons, lats, st.floats(min_value=0.5, max_value=1000)), bandwidths)
def test_a_single_place_peaks_in_its_own_cell(place, bandwidth):
    mass = kernel_mass(GRID, [place], bandwidth)
    own = GRID.cell_of(place.lon, place.lat)
    assert own is not None
    assert mass[own] >= mass.max() * (1 - 1e-12)
    assert mass[own] > 0


@settings(max_examples=40, deadline=None)
@given(places, places, st.floats(min_value=0, max_value=10), bandwidths)
def test_heat_adds_up_place_by_place_and_scales_with_the_weights(first, second, factor, bandwidth):
    """Two groups of places make the sum of their heats; doubling every weight doubles the heat."""
    together = kernel_mass(GRID, first + second, bandwidth)
    apart = kernel_mass(GRID, first, bandwidth) + kernel_mass(GRID, second, bandwidth)
    assert np.allclose(together, apart, rtol=1e-9, atol=1e-9)
    scaled = [Place(p.lon, p.lat, p.weight * factor) for p in first]
    assert np.allclose(kernel_mass(GRID, scaled, bandwidth), factor * kernel_mass(GRID, first, bandwidth))


def test_far_apart_places_make_two_peaks_with_little_between():
    west = Place(119.9, 31.4, 100)
    east = Place(120.4, 31.7, 300)
    mass = kernel_mass(GRID, [west, east], 3)
    peak_west, peak_east = mass[GRID.cell_of(west.lon, west.lat)], mass[GRID.cell_of(east.lon, east.lat)]
    assert peak_east > peak_west
    assert mass[GRID.cell_of(120.15, 31.55)] < peak_west / 100


def test_no_places_no_heat():
    assert kernel_mass(GRID, [], 4).sum() == 0


@pytest.mark.parametrize(
    "place, bandwidth",
    [(Place(120, 31.5, -1), 4), (Place(120, 31.5, math.nan), 4), (Place(120, 31.5, 1), 0)],
)
def test_bad_weights_and_bandwidths_are_refused(place, bandwidth):
    with pytest.raises(ValueError):
        kernel_mass(GRID, [place], bandwidth)


def test_the_grid_covers_the_box_with_square_cells_and_its_margin():
    south, west, north, east = BOX
    grid = grid_over(*BOX, long_side_cells=60, margin_km=5)
    assert max(grid.rows, grid.columns) == 60
    assert grid.cell_of(west, south) is not None and grid.cell_of(east, north) is not None
    margin_west = (west - grid.west) * grid.km_per_degree_lon
    margin_south = (south - grid.south) * KM_PER_DEGREE
    assert margin_west >= 5 - 1e-6 and margin_south >= 5 - 1e-6
    w, s, e, n = grid.cell_box(0, 0)
    assert (e - w) * grid.km_per_degree_lon == pytest.approx(grid.cell_km)
    assert (n - s) * KM_PER_DEGREE == pytest.approx(grid.cell_km)
    assert grid.cell_of(west - 1, south) is None


def test_cells_above_keeps_only_the_cells_over_the_floor_with_their_boxes():
    mass = kernel_mass(GRID, [Place(120.3, 31.6, 50)], 2)
    kept = cells_above(GRID, mass, mass.max() * 0.1)
    assert 0 < len(kept) < GRID.rows * GRID.columns
    assert all(cell >= mass.max() * 0.1 for _, cell in kept)
    assert sum(cell for _, cell in kept) == pytest.approx(mass[mass >= mass.max() * 0.1].sum(), rel=1e-12)
    boxes = {box for box, _ in kept}
    row, column = GRID.cell_of(120.3, 31.6)
    assert GRID.cell_box(row, column) in boxes
    assert np.count_nonzero(mass >= mass.max() * 0.1) == len(kept)
