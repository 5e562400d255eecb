import math

from hypothesis import given
from hypothesis import strategies as st

from layouts.sparkline import HEIGHT, PAD, WIDTH, sparkline, sparkline_path


def test_no_values_draws_nothing():
    assert sparkline_path([]) == ""
    assert sparkline_path([None, None]) == ""


def test_a_gap_lifts_the_pen():
    path = sparkline_path([1, 2, None, 3])
    assert path.count("M") == 2 and path.count("L") == 1


def test_flat_series_stays_inside_the_box():
    assert (
        sparkline_path([5, 5, 5])
        == f"M{PAD:.1f},{HEIGHT - PAD:.1f}L60.0,{HEIGHT - PAD:.1f}L118.0,{HEIGHT - PAD:.1f}"
    )


@given(st.lists(st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True, width=32)), max_size=60))
def test_every_point_is_inside_the_viewbox(values):
    path = sparkline_path(values)
    points = [p for p in path.replace("M", " ").replace("L", " ").split()]
    assert len(points) == sum(1 for v in values if v is not None and math.isfinite(v))
    for point in points:
        x, y = map(float, point.split(","))
        assert 0 <= x <= WIDTH and 0 <= y <= HEIGHT


def test_image_carries_its_label():
    image = sparkline([1, 2], "#ff0000", "24 h: 1 → 2")
    assert image.alt == "24 h: 1 → 2" and image.src.startswith("data:image/svg+xml,")
