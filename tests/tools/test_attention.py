"""Tests for deblur_cli.tools.attention (attention maps) and deblur_cli.tools.colormaps."""

from __future__ import annotations

import csv
import hashlib
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deblur_cli.errors import InputError, OutputError, ResourceError, UsageError
from deblur_cli.network.model import AttentiveDeblurNet, ModelConfig
from deblur_cli.tools.attention import (
    DEFAULT_BLOCKS,
    AttentionOptions,
    all_blocks,
    attention_map,
    check_blocks,
    compute_attention,
    display_values,
    parse_blocks,
    render_overlay,
)
from deblur_cli.tools.colormaps import COLORMAPS, apply_colormap, colormap_lut, colormap_names

TINY = ModelConfig(widths=(16, 16, 16), kernel_size=3, blocks_per_group=3)
NO_DECODER_SA = ModelConfig(
    widths=(16, 16, 16), kernel_size=3, blocks_per_group=3, decoder_spatial_attention=False
)
NO_CA = ModelConfig(widths=(16, 16, 16), kernel_size=3, blocks_per_group=3, channel_attention=False)
H, W = 24, 40  # not multiples of 16: exercises padding and cropping


def _model(config: ModelConfig = TINY, seed: int = 0) -> AttentiveDeblurNet:
    torch.manual_seed(seed)
    return AttentiveDeblurNet(config)


def _rgb(h: int = H, w: int = W, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx / max(w - 1, 1), yy / max(h - 1, 1), 0.5 * np.ones((h, w))], axis=-1)
    return np.clip(base + 0.1 * rng.standard_normal((h, w, 3)), 0, 1).astype(np.float32)


@pytest.fixture
def image_file(tmp_path: Path) -> Path:
    path = tmp_path / "in" / "photo.png"
    path.parent.mkdir()
    Image.fromarray((_rgb() * 255).round().astype(np.uint8)).save(path)
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _make_sa_constant(model: AttentiveDeblurNet, group: str, index: int, bias: float) -> None:
    """Zero the last SA layer of one block so its map is sigmoid(bias) everywhere."""
    sa = getattr(model.nets[0], group)[index].sa
    with torch.no_grad():
        sa.fc2.weight.zero_()
        sa.fc2.bias.fill_(bias)


# ---------------------------------------------------------------- block names


def test_parse_blocks_canonicalises_and_deduplicates() -> None:
    assert parse_blocks("enc2, ENC5,dec8,enc2") == ("enc2", "enc5", "dec8")
    assert parse_blocks("enc05") == ("enc5",)
    assert parse_blocks("all") == all_blocks(9)
    assert len(parse_blocks("all")) == 18 and parse_blocks("all")[-1] == "dec9"
    assert parse_blocks("enc3", blocks_per_side=3) == ("enc3",)


@pytest.mark.parametrize("spec", ["enc0", "enc10", "dec99", "foo", "enc", "enc2,bar"])
def test_parse_blocks_rejects_bad_names_with_valid_range(spec: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_blocks(spec)
    message = str(err.value)
    assert "enc1..enc9" in message and "dec1..dec9" in message
    bad = spec.split(",")[-1]
    assert bad in message and "\n" not in message


@pytest.mark.parametrize("spec", ["", " ", " , "])
def test_parse_blocks_rejects_empty(spec: str) -> None:
    with pytest.raises(UsageError, match="no blocks given"):
        parse_blocks(spec)


def test_check_blocks_uses_the_models_block_count() -> None:
    small = ModelConfig(widths=(4, 8, 16), kernel_size=3, blocks_per_group=1)
    assert check_blocks(small, ("enc1", "dec3")) == ("enc1", "dec3")
    with pytest.raises(UsageError, match=r"enc5.*enc1\.\.enc3"):
        check_blocks(small, DEFAULT_BLOCKS)


def test_blocks_without_spatial_attention_are_named() -> None:
    assert check_blocks(NO_DECODER_SA, ("enc2", "enc5")) == ("enc2", "enc5")
    with pytest.raises(UsageError) as err:
        compute_attention(_model(NO_DECODER_SA), _rgb(), ("enc2", "dec2", "dec8"), "finest")
    message = str(err.value)
    assert "dec2, dec8" in message and "decoder spatial attention is disabled" in message
    assert "enc2" not in message


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"scale": "middle"}, "finest, all"),
        ({"colormap": "rainbow"}, "turbo"),
        ({"max_side": 4}, "at least 16"),
    ],
)
def test_options_validate(kwargs: dict, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        AttentionOptions(**kwargs)


def test_options_accept_a_comma_separated_string() -> None:
    assert AttentionOptions(blocks="enc2, dec8").blocks == ("enc2", "dec8")


# ---------------------------------------------------------------- computation


def test_maps_have_image_size_and_unit_range() -> None:
    model = _model()
    rgb = _rgb()
    deblurred, spatial, channel = compute_attention(model, rgb, ("enc2", "enc5", "dec8"), "finest")
    assert deblurred.shape == (H, W, 3) and deblurred.dtype == np.float32
    assert deblurred.min() >= 0.0 and deblurred.max() <= 1.0
    assert set(spatial) == {(2, "enc2"), (2, "enc5"), (2, "dec8")}
    for values in spatial.values():
        assert values.shape == (H, W) and values.dtype == np.float32
        assert values.min() >= 0.0 and values.max() <= 1.0
        assert values.std() > 0  # random weights give a structured, non-constant map
    assert set(channel) == set(spatial)
    for weights in channel.values():
        assert weights.shape == (16,) and np.all((weights >= 0) & (weights <= 1))


def test_scale_all_returns_every_scale() -> None:
    _, spatial, _ = compute_attention(_model(), _rgb(), ("enc1", "dec9"), "all")
    assert set(spatial) == {(s, b) for s in range(3) for b in ("enc1", "dec9")}
    assert all(v.shape == (H, W) for v in spatial.values())
    # Different scales see different inputs, so their maps differ.
    assert not np.allclose(spatial[(0, "enc1")], spatial[(2, "enc1")])


@pytest.mark.parametrize("size", [(1, 1), (5, 3), (17, 33)])
def test_tiny_and_odd_sizes_are_padded_and_cropped(size: tuple[int, int]) -> None:
    h, w = size
    deblurred, spatial, _ = compute_attention(_model(), _rgb(h, w), ("enc5",), "finest")
    assert deblurred.shape == (h, w, 3)
    assert spatial[(2, "enc5")].shape == (h, w)


def test_constant_spatial_attention_gives_constant_map() -> None:
    model = _model()
    _make_sa_constant(model, "enc2", 1, 0.7)  # enc5 = second block of the middle encoder group
    _make_sa_constant(model, "dec1", 1, -1.3)  # dec8 = second block of the last decoder group
    _, spatial, _ = compute_attention(model, _rgb(), ("enc4", "enc5", "dec8"), "all")
    for s in range(3):
        np.testing.assert_allclose(spatial[(s, "enc5")], 1 / (1 + math.exp(-0.7)), atol=1e-5)
        np.testing.assert_allclose(spatial[(s, "dec8")], 1 / (1 + math.exp(1.3)), atol=1e-5)
        assert spatial[(s, "enc4")].std() > 0  # the neighbouring block is untouched


def test_bad_device_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown device 'tpu'"):
        compute_attention(_model(), _rgb(), ("enc2",), "finest", device="tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_a_resource_error() -> None:
    with pytest.raises(ResourceError, match="CUDA is not available"):
        compute_attention(_model(), _rgb(), ("enc2",), "finest", device="cuda")


def test_model_mode_is_restored() -> None:
    model = _model()
    model.train()
    compute_attention(model, _rgb(), ("enc2",), "finest")
    assert model.training


# ---------------------------------------------------------------- rendering


def test_display_values_stretch_and_constant() -> None:
    ramp = np.linspace(0.4, 0.6, 101, dtype=np.float32).reshape(1, -1)
    shown = display_values(ramp, normalize=True)
    assert shown.min() == 0.0 and shown.max() == 1.0
    np.testing.assert_allclose(display_values(ramp, normalize=False), ramp)
    flat = np.full((3, 4), 0.25, dtype=np.float32)
    np.testing.assert_allclose(display_values(flat, normalize=True), flat)


def test_overlay_blends_half_and_half() -> None:
    rgb = np.full((2, 2, 3), 1.0, dtype=np.float32)
    heat = np.zeros((2, 2, 3), dtype=np.uint8)
    heat[..., 0] = 255
    out = render_overlay(rgb, heat, alpha=0.5)
    assert out.dtype == np.uint8
    assert out[0, 0].tolist() == [255, 128, 128]


def test_colormaps_tables_and_paper_convention() -> None:
    assert set(colormap_names()) >= {"turbo", "jet", "viridis", "inferno", "gray"}
    for name, points in COLORMAPS.items():
        lut = colormap_lut(name)
        assert lut.shape == (256, 3) and lut.dtype == np.uint8
        np.testing.assert_array_equal(lut[0], np.round(np.array(points[0][1]) * 255))
        np.testing.assert_array_equal(lut[-1], np.round(np.array(points[-1][1]) * 255))
    for name in ("turbo", "jet"):  # red high, blue low, as in the paper's figures
        low, high = apply_colormap(np.array([0.0, 1.0]), name).astype(int)
        assert low[2] > low[0] and high[0] > high[2]
    gray = apply_colormap(np.array([-1.0, 0.5, 2.0, np.nan]), "gray")
    assert gray[:, 0].tolist() == [0, 128, 255, 0]
    with pytest.raises(UsageError, match="unknown colormap 'nope'"):
        colormap_lut("nope")


# ---------------------------------------------------------------- files


def test_attention_map_writes_expected_files(image_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "nested"
    calls: list[tuple[int, int]] = []
    before = _digest(image_file)
    result = attention_map(
        _model(), image_file, out, AttentionOptions(raw=True), lambda d, t: calls.append((d, t))
    )

    expected = {f"photo_{b}_heatmap.png" for b in DEFAULT_BLOCKS}
    expected |= {f"photo_{b}_overlay.jpg" for b in DEFAULT_BLOCKS}
    expected |= {f"photo_{b}.npy" for b in DEFAULT_BLOCKS}
    expected |= {"photo_channel_attention.csv", "photo_attention_summary.png"}
    assert {p.name for p in result.files} == expected
    assert {p.name for p in out.iterdir()} == expected  # no temp files left behind
    assert result.notes == []
    assert _digest(image_file) == before

    for b in DEFAULT_BLOCKS:
        with Image.open(out / f"photo_{b}_heatmap.png") as im:
            assert im.format == "PNG" and im.size == (W, H) and im.mode == "RGB"
        with Image.open(out / f"photo_{b}_overlay.jpg") as im:
            assert im.format == "JPEG" and im.size == (W, H)
        values = np.load(out / f"photo_{b}.npy")
        assert values.shape == (H, W) and values.dtype == np.float32
        assert values.min() >= 0.0 and values.max() <= 1.0

    with Image.open(out / "photo_attention_summary.png") as im:
        im.load()
        assert im.format == "PNG"
        # 3 columns of 320 px panels; rows: input/output, encoder, decoder.
        assert 3 * 320 <= im.width <= 1200 and 3 * 192 <= im.height <= 1200

    with open(out / "photo_channel_attention.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["scale", "block", "channel", "weight"]
    assert len(rows) == 1 + len(DEFAULT_BLOCKS) * 16
    assert {r[1] for r in rows[1:]} == set(DEFAULT_BLOCKS) and {r[0] for r in rows[1:]} == {"2"}
    assert all(0.0 <= float(r[3]) <= 1.0 for r in rows[1:])

    assert calls[0][0] == 0 and calls[-1][0] == calls[-1][1]
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_constant_map_reaches_heatmap_and_npy(image_file: Path, tmp_path: Path) -> None:
    model = _model()
    _make_sa_constant(model, "enc2", 1, 0.7)
    level = 1 / (1 + math.exp(-0.7))
    attention_map(model, image_file, tmp_path / "out", AttentionOptions(blocks=("enc5",), raw=True))
    np.testing.assert_allclose(np.load(tmp_path / "out" / "photo_enc5.npy"), level, atol=1e-5)
    heat = np.asarray(Image.open(tmp_path / "out" / "photo_enc5_heatmap.png"))
    assert (heat == apply_colormap(np.array(level), "turbo")).all()


def test_scale_all_writes_every_scale(image_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    options = AttentionOptions(blocks=("enc2", "dec5"), scale="all")
    result = attention_map(_model(), image_file, out, options)
    names = {p.name for p in out.iterdir()}
    for s in range(3):
        for b in ("enc2", "dec5"):
            assert f"photo_{b}_s{s}_heatmap.png" in names and f"photo_{b}_s{s}_overlay.jpg" in names
    assert "photo_attention_summary.png" in names
    assert len(names) == 2 * 3 * 2 + 1  # no .npy / CSV without raw
    assert any("_s0 is the coarsest" in n for n in result.notes)


def test_existing_files_need_overwrite(image_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    options = AttentionOptions(blocks=("enc2",))
    out.mkdir()
    existing = out / "photo_attention_summary.png"
    existing.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="photo_attention_summary.png"):
        attention_map(_model(), image_file, out, options)
    assert existing.read_bytes() == b"keep me"
    assert [p.name for p in out.iterdir()] == [existing.name]  # nothing written at all

    attention_map(_model(), image_file, out, options, overwrite=True)
    with Image.open(existing) as im:
        assert im.format == "PNG"


def test_never_writes_over_the_input(image_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "photo_enc2_heatmap.png").symlink_to(image_file)
    before = _digest(image_file)
    with pytest.raises(OutputError, match="input"):
        attention_map(
            _model(), image_file, out, AttentionOptions(blocks=("enc2",)), overwrite=True
        )
    assert _digest(image_file) == before


def test_large_images_are_downscaled_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.fromarray((_rgb(40, 64) * 255).astype(np.uint8)).save(path)
    options = AttentionOptions(blocks=("enc2",), max_side=32, raw=True)
    result = attention_map(_model(), path, tmp_path / "out", options)
    assert any("64x40" in n and "32x20" in n for n in result.notes)
    with Image.open(tmp_path / "out" / "big_enc2_heatmap.png") as im:
        assert im.size == (32, 20)
    assert np.load(tmp_path / "out" / "big_enc2.npy").shape == (20, 32)


def test_no_channel_attention_means_no_csv(image_file: Path, tmp_path: Path) -> None:
    options = AttentionOptions(blocks=("dec2",), raw=True)
    result = attention_map(_model(NO_CA), image_file, tmp_path / "out", options)
    assert not (tmp_path / "out" / "photo_channel_attention.csv").exists()
    assert (tmp_path / "out" / "photo_dec2.npy").exists()
    assert any("no channel attention" in n for n in result.notes)


def test_decoder_blocks_without_sa_fail_before_writing(image_file: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="dec2, dec5, dec8"):
        attention_map(_model(NO_DECODER_SA), image_file, tmp_path / "out", AttentionOptions())
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content", [None, b"not an image"])
def test_bad_input_is_an_input_error(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "broken.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match="broken.png"):
        attention_map(_model(), path, tmp_path / "out", AttentionOptions(blocks=("enc2",)))
    assert not (tmp_path / "out").exists()
