"""Tile planning, blend windows, padding indices and stitching."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from deblur_cli.network.tiling import (
    Stitcher,
    Tile,
    blend_window,
    fit_tile,
    padded_size,
    plan_tiles,
    reflect_indices,
    tile_window,
)


def _check_plan(height: int, width: int, tile: int, overlap: int, tiles: list[Tile]) -> None:
    covered = np.zeros((height, width), dtype=np.int32)
    for t in tiles:
        assert 0 <= t.y0 < t.y1 <= height and 0 <= t.x0 < t.x1 <= width
        assert t.height == min(tile, height) and t.width == min(tile, width)
        covered[t.y0 : t.y1, t.x0 : t.x1] += 1
    assert covered.min() >= 1, "a pixel is not covered"
    # Consecutive tiles along each axis overlap by at least ``overlap``.
    for starts, side in (({t.y0 for t in tiles}, height), ({t.x0 for t in tiles}, width)):
        s = sorted(starts)
        size = min(tile, side)
        for a, b in zip(s, s[1:]):
            assert a + size - b >= overlap


@pytest.mark.parametrize(
    "height,width,tile,overlap",
    [(1, 1, 16, 0), (17, 33, 16, 4), (1001, 7, 64, 32), (300, 300, 128, 64), (64, 64, 64, 32)],
)
def test_plan_covers_examples(height: int, width: int, tile: int, overlap: int) -> None:
    tiles = plan_tiles(height, width, tile, overlap)
    _check_plan(height, width, tile, overlap, tiles)


@settings(max_examples=50, deadline=None)
@given(
    height=st.integers(1, 300),
    width=st.integers(1, 300),
    tile=st.integers(16, 128),
    data=st.data(),
)
def test_plan_covers_every_pixel(height: int, width: int, tile: int, data: st.DataObject) -> None:
    overlap = data.draw(st.integers(0, tile // 2), label="overlap")
    tiles = plan_tiles(height, width, tile, overlap)
    _check_plan(height, width, tile, overlap, tiles)
    assert len(set(tiles)) == len(tiles)


@settings(max_examples=30, deadline=None)
@given(
    hm=st.integers(1, 20), wm=st.integers(1, 20), tm=st.integers(2, 8), data=st.data()
)
def test_aligned_plan_starts_on_multiple(hm: int, wm: int, tm: int, data: st.DataObject) -> None:
    m = 16
    height, width, tile = hm * m, wm * m, tm * m
    overlap = data.draw(st.integers(0, tile // 2), label="overlap")
    tiles = plan_tiles(height, width, tile, overlap, align=m)
    _check_plan(height, width, tile, overlap, tiles)
    assert all(t.y0 % m == 0 and t.x0 % m == 0 for t in tiles)


@settings(max_examples=50, deadline=None)
@given(length=st.integers(1, 400), tile=st.integers(16, 128), data=st.data())
def test_fit_tile_keeps_the_count_and_shrinks(length: int, tile: int, data: st.DataObject) -> None:
    overlap = data.draw(st.integers(0, tile // 2), label="overlap")
    fitted = fit_tile(length, tile, overlap)
    assert fitted <= tile
    before = plan_tiles(1, length, tile, overlap)
    after = plan_tiles(1, length, fitted, overlap)
    _check_plan(1, length, fitted, overlap, after)
    assert len(after) == len(before)


def test_fit_tile_examples() -> None:
    assert fit_tile(1504, 1248, 64, 16) == 784
    assert fit_tile(1024, 512, 64, 16) == 384
    assert fit_tile(100, 128, 16) == 128
    assert fit_tile(512, 128, 0, 16) == 128


def test_plan_accepts_rectangular_tiles() -> None:
    tiles = plan_tiles(100, 100, (32, 64), 8)
    assert {(t.height, t.width) for t in tiles} == {(32, 64)}
    assert len(tiles) == 4 * 2


def test_plan_spreads_tiles_evenly() -> None:
    tiles = plan_tiles(1, 100, 40, 10)
    starts = [t.x0 for t in tiles]
    assert starts == [0, 30, 60]


@pytest.mark.parametrize("tile,overlap", [(16, 16), (16, 20), (0, 0), (16, -1)])
def test_plan_rejects_bad_arguments(tile: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        plan_tiles(50, 50, tile, overlap)


def test_plan_rejects_unaligned_sizes() -> None:
    with pytest.raises(ValueError, match="align"):
        plan_tiles(50, 64, 32, 8, align=16)


def test_blend_window_positive_and_flat_on_image_borders() -> None:
    w = blend_window(40, 50, 16, top=False, left=False)
    assert w.shape == (40, 50) and w.dtype == torch.float32
    assert float(w.min()) > 0 and float(w.max()) <= 1
    assert torch.all(w[0, :30] == 1)  # top edge, away from the right ramp
    assert torch.all(w[:20, 0] == 1)  # left edge, away from the bottom ramp
    assert float(w[-1, -1]) < 0.01  # corner where two ramps meet
    # Monotone ramp towards the bottom edge.
    col = w[:, 10]
    assert torch.all(col[24:-1] >= col[25:])


@pytest.mark.parametrize("ramp", [1.0, 0.5, 0.25])
def test_neighbour_ramps_sum_to_one(ramp: float) -> None:
    overlap = 24
    a = blend_window(1, 64, overlap, top=False, bottom=False, left=False, right=True, ramp=ramp)
    b = blend_window(1, 64, overlap, top=False, bottom=False, left=True, right=False, ramp=ramp)
    total = a[0, 64 - overlap :] + b[0, :overlap]
    # Exactly one, except where both sit on the small floor weight.
    assert torch.allclose(total, torch.ones_like(total), atol=2.5e-3)
    assert torch.all(total > 0.99)


def test_tile_window_ramps_only_towards_neighbours() -> None:
    t = Tile(0, 20, 30, 50)  # touches the top, bottom and right image borders
    w = tile_window(t, 30, 50, 10)
    assert torch.all(w[:, -1] == 1) and torch.all(w[0, 10:] == 1)
    assert float(w[15, 0]) < 0.5


def test_stitcher_reassembles_constant_image() -> None:
    h, w, overlap = 70, 90, 12
    tiles = plan_tiles(h, w, 32, overlap)
    st_ = Stitcher(h, w)
    for t in tiles:
        values = torch.full((3, t.height, t.width), 0.25)
        st_.add(t, values, tile_window(t, h, w, overlap))
    out = st_.result()
    assert out.shape == (h, w, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, 0.25, atol=1e-6)


def test_stitcher_blends_disagreeing_tiles_smoothly() -> None:
    h, w, overlap = 1, 64, 16
    left, right = Tile(0, 0, 1, 40), Tile(0, 24, 1, 64)
    st_ = Stitcher(h, w, channels=1)
    st_.add(left, torch.zeros(1, 1, 40), tile_window(left, h, w, overlap))
    st_.add(right, torch.ones(1, 1, 40), tile_window(right, h, w, overlap))
    row = st_.result()[0, :, 0]
    assert np.all(row[:24] == 0) and np.all(row[40:] == 1)
    assert np.all(np.diff(row) >= 0)  # a monotone transition, no jump back
    assert np.max(np.diff(row)) < 0.5


def test_stitcher_clips_and_detects_gaps() -> None:
    st_ = Stitcher(4, 4)
    st_.add(Tile(0, 0, 4, 4), torch.full((3, 4, 4), 1.5), torch.ones(4, 4))
    assert st_.result().max() == 1.0
    gap = Stitcher(4, 4)
    gap.add(Tile(0, 0, 2, 4), torch.zeros(3, 2, 4), torch.ones(2, 4))
    with pytest.raises(ValueError, match="not covered"):
        gap.result()


@pytest.mark.parametrize("n,pad", [(5, 3), (2, 1), (9, 8), (16, 0)])
def test_reflect_indices_match_torch_reflect(n: int, pad: int) -> None:
    x = torch.arange(n, dtype=torch.float32).view(1, 1, n)
    expected = F.pad(x, (0, pad), mode="reflect").view(-1).long().numpy()
    np.testing.assert_array_equal(reflect_indices(n, n + pad), expected)


def test_reflect_indices_long_pads_and_single_pixel() -> None:
    # Repeated reflection: a triangle wave, always inside the axis.
    idx = reflect_indices(3, 12)
    np.testing.assert_array_equal(idx, [0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 1])
    np.testing.assert_array_equal(reflect_indices(1, 16), np.zeros(16))
    np.testing.assert_array_equal(reflect_indices(4, 6, start=2), [2, 3, 2, 1])


def test_padded_size() -> None:
    assert [padded_size(n, 16) for n in (1, 16, 17, 1001)] == [16, 16, 32, 1008]


@pytest.mark.parametrize("h, w", [(1, 1), (5, 16), (17, 3), (32, 32)])
def test_pad_to_multiple_reflects_like_torch_and_crops_back(h: int, w: int) -> None:
    from deblur_cli.network.tiling import pad_to_multiple

    rgb = np.random.default_rng(h * 100 + w).random((h, w, 3), dtype=np.float32)
    padded = pad_to_multiple(rgb, 16)
    assert padded.shape == (padded_size(h, 16), padded_size(w, 16), 3)
    np.testing.assert_array_equal(padded[:h, :w], rgb)
    if h > 1 and w > 1 and padded.shape[0] - h < h and padded.shape[1] - w < w:  # torch's reflect limit
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None]
        ref = F.pad(x, (0, padded.shape[1] - w, 0, padded.shape[0] - h), mode="reflect")
        np.testing.assert_array_equal(padded, ref[0].permute(1, 2, 0).numpy())
    assert pad_to_multiple(padded, 16) is padded  # nothing to do: no copy
