from __future__ import annotations

import numpy as np
import pytest

from vigil.analytics.geometry import (
    Box,
    fill_polygons,
    iou,
    merge_boxes,
    nms,
    point_in_polygon,
    rasterize_polygons,
    validate_polygon,
)


def test_validate_polygon_accepts_and_normalizes_closed_ring() -> None:
    pts = validate_polygon("zone 'door'", [(0.1, 0.1), (0.5, 0.1), (0.5, 0.5), (0.1, 0.1)])
    assert pts == ((0.1, 0.1), (0.5, 0.1), (0.5, 0.5))


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ([(0.1, 0.1), (0.9, 0.9)], "at least 3 points"),
        ([(0.1, 0.1), (1.2, 0.1), (0.5, 0.5)], "outside the frame"),
        ([(-0.01, 0.1), (0.5, 0.1), (0.5, 0.5)], "outside the frame"),
        ([(0.1, 0.1), (0.9, 0.9), (0.9, 0.1), (0.1, 0.9)], "self-intersecting"),
        ([(0.1, 0.1), (0.2, 0.2), (0.3, 0.3)], "no area"),
        ([(0.1, 0.1), (0.1, 0.1), (0.3, 0.3), (0.1, 0.5)], "repeats"),
    ],
)
def test_validate_polygon_rejects_with_name(
    points: list[tuple[float, float]], message: str
) -> None:
    with pytest.raises(ValueError, match=message) as err:
        validate_polygon("zone 'driveway'", points)
    assert "driveway" in str(err.value)


def test_point_in_polygon_concave() -> None:
    u_shape = [
        (0.1, 0.1),
        (0.3, 0.1),
        (0.3, 0.7),
        (0.7, 0.7),
        (0.7, 0.1),
        (0.9, 0.1),
        (0.9, 0.9),
        (0.1, 0.9),
    ]
    validate_polygon("u", u_shape)
    assert point_in_polygon((0.2, 0.5), u_shape)
    assert not point_in_polygon((0.5, 0.5), u_shape)  # in the notch
    assert point_in_polygon((0.5, 0.8), u_shape)


def test_box_helpers() -> None:
    a = Box(0.0, 0.0, 0.5, 0.5)
    b = Box(0.25, 0.25, 0.75, 0.75)
    assert iou(a, b) == pytest.approx(0.0625 / (0.25 + 0.25 - 0.0625))
    assert iou(a, Box(0.6, 0.6, 0.7, 0.7)) == 0.0
    assert a.bottom_center == (0.25, 0.5)
    assert Box(-0.1, 0.2, 1.3, 0.4).clip() == Box(0.0, 0.2, 1.0, 0.4)
    assert a.to_pixels(640, 480) == (0, 0, 320, 240)
    merged = merge_boxes([a, b, Box(0.9, 0.9, 1.0, 1.0)])
    assert Box(0.0, 0.0, 0.75, 0.75) in merged and len(merged) == 2
    keep = nms([a, Box(0.01, 0.0, 0.5, 0.5), Box(0.6, 0.6, 0.9, 0.9)], [0.5, 0.9, 0.4], 0.5)
    assert keep == [1, 2]


def test_rasterize_and_fill() -> None:
    poly = [(0.0, 0.0), (0.5, 0.0), (0.5, 0.5), (0.0, 0.5)]
    mask = rasterize_polygons([poly], 100, 50)
    assert mask[10, 10] == 255 and mask[40, 90] == 0
    img = np.full((50, 100, 3), 200, np.uint8)
    out = fill_polygons(img, [poly], 0)
    assert out[10, 10].tolist() == [0, 0, 0] and out[40, 90].tolist() == [200, 200, 200]
    assert img[10, 10].tolist() == [200, 200, 200]  # original untouched
