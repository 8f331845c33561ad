"""Tests for deblur_cli.weights: registry, safetensors/.pth loading, sha256 checks, downloads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from deblur_cli import weights as W
from deblur_cli.errors import WeightsError
from deblur_cli.network.model import AttentiveDeblurNet, ModelConfig

TINY = ModelConfig(widths=(4, 8, 16), kernel_size=3, blocks_per_group=1)
OTHER = ModelConfig(widths=(4, 8, 8), kernel_size=3, blocks_per_group=1)


def tiny_model(config: ModelConfig = TINY, seed: int = 0) -> AttentiveDeblurNet:
    torch.manual_seed(seed)
    model = AttentiveDeblurNet(config)
    with torch.no_grad():  # non-zero biases so that a lost bias would show
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return model.eval()


def outputs(model: AttentiveDeblurNet) -> torch.Tensor:
    torch.manual_seed(1)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        return model(x)[-1]


@pytest.fixture
def registry_dir(tmp_path, monkeypatch):
    """An empty temporary registry folder standing in for the bundled weights/."""
    folder = tmp_path / "bundled"
    folder.mkdir()
    monkeypatch.setattr(W.registry, "weights_dir", lambda: folder)
    write_registry(folder, None, [])
    return folder


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv(W.ENV_CACHE_DIR, str(cache))
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return cache


def write_registry(folder: Path, default: str | None, entries: list[dict]) -> None:
    (folder / "registry.json").write_text(json.dumps({"default": default, "weights": entries}))


def entry_dict(name: str, file: str, sha: str, config: ModelConfig = TINY, **extra) -> dict:
    d = {
        "name": name,
        "file": file,
        "sha256": sha,
        "config": config.to_dict(),
        "licence": "MIT",
        "provenance": "test",
        "description": "tiny",
    }
    d.update(extra)
    return d


def register_tiny(folder: Path, name: str = "tiny", default: bool = True) -> tuple[Path, str]:
    path = folder / f"{name}.safetensors"
    sha = W.save_weights(tiny_model(), path)
    write_registry(folder, name if default else None, [entry_dict(name, path.name, sha)])
    return path, sha


# --------------------------------------------------------------------------- save / load


def test_save_load_round_trip_is_exact(tmp_path):
    model = tiny_model()
    path = tmp_path / "m.safetensors"
    sha = W.save_weights(model, path, metadata={"note": "hello"})
    assert sha == W.sha256_file(path)
    loaded, info = W.load_model(str(path))
    assert info.config == TINY and info.entry is None and info.sha256 == sha and info.path == path
    assert not loaded.training
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in loaded.parameters())
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert torch.equal(outputs(loaded), outputs(model))
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temp file left


def test_config_travels_in_metadata(tmp_path):
    config = ModelConfig(widths=(4, 8, 16), kernel_size=3, blocks_per_group=1, global_residual=True)
    path = tmp_path / "g.safetensors"
    W.save_weights(tiny_model(config), path)
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    assert json.loads(meta[W.META_CONFIG]) == config.to_dict()
    assert meta[W.META_FORMAT] == str(W.FORMAT_VERSION)
    model, info = W.load_model(str(path))
    assert info.config.global_residual and model.config == config


def test_fp16_save_halves_size_and_loads(tmp_path):
    model = tiny_model()
    full, half = tmp_path / "full.safetensors", tmp_path / "half.safetensors"
    W.save_weights(model, full)
    W.save_weights(model, half, dtype=torch.float16)
    ratio = half.stat().st_size / full.stat().st_size
    assert 0.45 < ratio < 0.6
    loaded, _ = W.load_model(str(half))
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    for key, value in model.state_dict().items():
        assert torch.allclose(loaded.state_dict()[key], value, rtol=1e-3, atol=1e-4), key


def test_save_requires_safetensors_name(tmp_path):
    # One rule, one exit code: the same OutputError (exit 4) as `deblur weights export` gives.
    from deblur_cli.errors import EXIT_OUTPUT, OutputError

    with pytest.raises(OutputError, match="safetensors") as caught:
        W.save_weights(tiny_model(), tmp_path / "m.pth")
    assert caught.value.exit_code == EXIT_OUTPUT
    assert not (tmp_path / "m.pth").exists()


def test_safetensors_without_config_is_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "bare.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_model().state_dict().items()}, str(path))
    with pytest.raises(WeightsError, match="no architecture config"):
        W.load_model(str(path))


def test_garbage_safetensors_is_refused(tmp_path):
    path = tmp_path / "junk.safetensors"
    path.write_bytes(b"this is not a weights file at all")
    with pytest.raises(WeightsError, match="not valid safetensors") as e:
        W.load_model(str(path))
    assert "\n" not in str(e.value)


def test_nan_weights_are_refused(tmp_path):
    model = tiny_model()
    with torch.no_grad():
        model.nets[0].in_conv.weight[0, 0, 0, 0] = float("nan")
    path = tmp_path / "nan.safetensors"
    W.save_weights(model, path)
    with pytest.raises(WeightsError, match="NaN"):
        W.load_model(str(path))


def test_wrong_config_is_a_strict_mismatch(tmp_path):
    state = tiny_model().state_dict()
    path = tmp_path / "ckpt.pth"
    torch.save({"model": state, "config": OTHER.to_dict()}, path)
    with pytest.raises(WeightsError, match="do not fit the architecture") as e:
        W.load_model(str(path))
    assert "wrong-shaped" in str(e.value) and "\n" not in str(e.value)


def test_missing_and_unexpected_keys_are_counted(tmp_path):
    state = dict(tiny_model().state_dict())
    state.pop("nets.0.out_conv.bias")
    state["nets.0.extra"] = torch.zeros(1)
    path = tmp_path / "ckpt.pth"
    torch.save({"model": state, "config": TINY.to_dict()}, path)
    with pytest.raises(WeightsError, match="1 missing, 1 unexpected, 0 wrong-shaped"):
        W.load_model(str(path))


# --------------------------------------------------------------------------- .pth files


def test_plain_state_dict_pth_loads(tmp_path):
    model = tiny_model()
    path = tmp_path / "raw.pth"
    torch.save(model.state_dict(), path)
    loaded, info = W.load_model(str(path))
    assert info.config == TINY  # inferred from the tensor shapes
    assert torch.equal(outputs(loaded), outputs(model))


def test_raw_state_dict_of_other_variant_infers_architecture(tmp_path):
    config = ModelConfig(
        widths=(4, 8, 12),
        kernel_size=3,
        blocks_per_group=2,
        share_weights=False,
        num_scales=2,
        encoder_spatial_attention=False,
        combination="parallel_concat",
        reduction=4,
    )
    model = tiny_model(config)
    path = tmp_path / "raw.pt"
    torch.save({"module." + k: v for k, v in model.state_dict().items()}, path)  # DDP-style keys
    loaded, info = W.load_model(str(path))
    assert info.config == config
    assert torch.equal(outputs(loaded), outputs(model))


def test_checkpoint_dict_with_model_and_config_loads(tmp_path):
    model = tiny_model(OTHER)
    path = tmp_path / "step_100.ckpt"
    torch.save(
        {
            "model": model.state_dict(),
            "config": OTHER.to_dict(),
            "optimizer": {"state": {0: {"step": torch.tensor(9.0)}}, "param_groups": [{"lr": 0.1}]},
            "step": 100,
            "rng": torch.get_rng_state(),
        },
        path,
    )
    loaded, info = W.load_model(str(path))
    assert info.config == OTHER and info.sha256 == W.sha256_file(path)
    assert torch.equal(outputs(loaded), outputs(model))


class _Payload:
    """Pickles as a call to _make_marker: a stand-in for a malicious __reduce__."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (_make_marker, (self.marker,))


def _make_marker(path: str) -> str:
    Path(path).write_text("code ran")
    return path


def _evil_checkpoint(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "MARKER"
    path = tmp_path / "evil.pth"
    torch.save({"model": tiny_model().state_dict(), "extra": _Payload(str(marker))}, path)
    assert not marker.exists()
    return path, marker


def test_pickle_with_code_is_refused_and_never_runs(tmp_path):
    path, marker = _evil_checkpoint(tmp_path)
    with pytest.raises(WeightsError, match="refusing to load .*could run code.*safetensors") as e:
        W.load_model(str(path))
    assert "_make_marker" in str(e.value) and "\n" not in str(e.value)
    assert not marker.exists()


def test_evil_payload_is_live(tmp_path):
    # Control: the payload really runs when unpickled unsafely, so the test above can fail.
    path, marker = _evil_checkpoint(tmp_path)
    torch.load(path, weights_only=False)
    assert marker.read_text() == "code ran"


def test_corrupt_pth_is_refused(tmp_path):
    for name, data in [("empty.pth", b""), ("junk.pth", b"junk" * 100)]:
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(WeightsError) as e:
            W.load_model(str(path))
        assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_unknown_extension_and_missing_path(tmp_path, registry_dir):
    path = tmp_path / "m.bin"
    path.write_bytes(b"x")
    with pytest.raises(WeightsError, match="unsupported weights file type"):
        W.load_model(str(path))
    with pytest.raises(WeightsError, match="not found"):
        W.load_model(str(tmp_path / "nope.safetensors"))
    with pytest.raises(WeightsError, match="only http"):
        W.load_model("ftp://example.invalid/m.safetensors")


# --------------------------------------------------------------------------- registry


def test_registry_parsing_and_loading_by_name(registry_dir):
    path, sha = register_tiny(registry_dir, "tiny")
    other = registry_dir / "other.safetensors"
    other_sha = W.save_weights(tiny_model(OTHER), other)
    write_registry(
        registry_dir,
        "tiny",
        [
            entry_dict("tiny", path.name, sha),
            entry_dict("other", other.name, other_sha, OTHER, url="https://x.invalid/o"),
        ],
    )
    entries = W.list_weights()
    assert [e.name for e in entries] == ["tiny", "other"]
    assert entries[0] == W.WeightsEntry("tiny", path.name, sha, TINY, "MIT", "test", "tiny", None)
    assert entries[1].url == "https://x.invalid/o" and entries[1].config == OTHER
    assert W.default_weights_name() == "tiny"
    model, info = W.load_model()
    assert info.source == "tiny" and info.entry == entries[0] and info.path == path
    assert model.config == TINY
    _, info = W.load_model("other")
    assert info.config == OTHER and info.sha256 == other_sha
    assert [(e.name, ok) for e, ok, _ in W.verify_all()] == [("tiny", True), ("other", True)]


def test_unknown_name_lists_known_names(registry_dir):
    register_tiny(registry_dir, "alpha")
    with pytest.raises(WeightsError, match=r"unknown weights 'beta' \(known: alpha\)"):
        W.get_entry("beta")
    with pytest.raises(WeightsError, match="known: alpha"):
        W.load_model("beta")


def test_no_default_gives_no_trained_weights_error(registry_dir):
    register_tiny(registry_dir, "tiny", default=False)
    assert W.default_weights_name() is None
    with pytest.raises(WeightsError, match="no trained weights are installed") as e:
        W.load_model()
    assert "\n" not in str(e.value) and e.value.exit_code == 5


def test_shipped_registry_is_valid():
    # The real bundled registry parses and its files match their sha256.
    for entry, ok, message in W.verify_all():
        assert ok, f"{entry.name}: {message}"
    default = W.default_weights_name()
    assert default is None or default in [e.name for e in W.list_weights()]


@pytest.mark.parametrize(
    "content, match",
    [
        ("{not json", "cannot be read"),
        ('{"default": null, "weights": {}}', "'weights' list"),
        ('{"default": "ghost", "weights": []}', "not a registered name"),
        ('{"default": null, "weights": [{"name": "x"}]}', "lacks file, sha256"),
    ],
)
def test_bad_registry_is_a_weights_error(registry_dir, content, match):
    (registry_dir / "registry.json").write_text(content)
    with pytest.raises(WeightsError, match=match):
        W.list_weights()


def test_bad_registry_entries(registry_dir):
    good = entry_dict("x", "x.safetensors", "0" * 64)
    cases = [
        ({**good, "sha256": "abc"}, "64 hex"),
        ({**good, "file": "../x.safetensors"}, "plain file name"),
        ({**good, "config": {**TINY.to_dict(), "kernel_size": 4}}, "invalid architecture config"),
        ({**good, "url": "ftp://x"}, "http"),
    ]
    for entry, match in cases:
        write_registry(registry_dir, None, [entry])
        with pytest.raises(WeightsError, match=match):
            W.list_weights()
    write_registry(registry_dir, None, [good, good])
    with pytest.raises(WeightsError, match="more than once"):
        W.list_weights()


def test_one_flipped_byte_is_refused(registry_dir):
    path, sha = register_tiny(registry_dir, "tiny")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    expected = f"corrupt or tampered with: sha256 [0-9a-f]{{64}} expected {sha}"
    with pytest.raises(WeightsError, match=expected):
        W.load_model("tiny")
    with pytest.raises(WeightsError, match="corrupt or tampered"):
        W.download_entry("tiny")
    [(entry, ok, message)] = W.verify_all()
    assert entry.name == "tiny" and not ok and "corrupt" in message


def test_registry_config_must_match_file_metadata(registry_dir):
    path, sha = register_tiny(registry_dir, "tiny")
    other = ModelConfig(widths=(4, 8, 16), kernel_size=3, blocks_per_group=1, global_residual=True)
    write_registry(registry_dir, "tiny", [entry_dict("tiny", path.name, sha, other)])
    with pytest.raises(WeightsError, match="does not match"):
        W.load_model("tiny")


def test_missing_bundled_file_without_url(registry_dir):
    path, _ = register_tiny(registry_dir, "tiny")
    path.unlink()
    with pytest.raises(WeightsError, match="missing"):
        W.load_model("tiny")
    [(_, ok, message)] = W.verify_all()
    assert not ok and "missing" in message


# --------------------------------------------------------------------------- cache dir


def test_cache_dir_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv(W.ENV_CACHE_DIR, str(tmp_path / "elsewhere"))
    assert W.cache_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv(W.ENV_CACHE_DIR)
    import platformdirs

    assert W.cache_dir() == Path(platformdirs.user_cache_dir("deblur", appauthor=False))


# --------------------------------------------------------------------------- downloads


@pytest.fixture
def weights_file(tmp_path) -> tuple[bytes, str]:
    path = tmp_path / "src" / "served.safetensors"
    path.parent.mkdir()
    sha = W.save_weights(tiny_model(), path)
    return path.read_bytes(), sha


@pytest.fixture
def server(weights_file, hostile_server):
    return hostile_server(weights_file[0])


def cache_files(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if p.is_file()] if cache.exists() else []


def test_download_then_cache_hit(server, weights_file, isolated_cache):
    body, sha = weights_file
    url = server.base + "/ok/model.safetensors"
    seen: list[tuple[int, int]] = []
    path = W.download(url, sha, progress=lambda done, total: seen.append((done, total)))
    assert path.parent == isolated_cache / "downloads" and path.name.endswith("-model.safetensors")
    assert path.read_bytes() == body and seen[-1] == (len(body), len(body))
    assert W.download(url, sha) == path
    assert W.download(url) == path  # sha unknown: the complete cached file is reused
    assert server.hits["ok"] == 1
    assert cache_files(isolated_cache) == [path]


def test_load_model_from_url(server, weights_file, isolated_cache):
    url = server.base + "/ok/model.safetensors"
    model, info = W.load_model(url)
    assert info.source == url and info.sha256 == weights_file[1] and info.config == TINY
    assert torch.equal(outputs(model), outputs(tiny_model()))
    assert info.path.is_relative_to(isolated_cache)


def test_registered_url_is_downloaded_and_verified(
    server, weights_file, registry_dir, isolated_cache
):
    _, sha = weights_file
    url = server.base + "/ok/model.safetensors"
    entry = entry_dict("remote", "remote.safetensors", sha, url=url)
    write_registry(registry_dir, "remote", [entry])
    [(_, ok, message)] = W.verify_all()
    assert ok and "not downloaded" in message
    path = W.download_entry("remote")
    assert W.sha256_file(path) == sha
    model, info = W.load_model()
    assert info.entry is not None and info.path == path and model.config == TINY
    assert server.hits["ok"] == 1
    [(_, ok, message)] = W.verify_all()
    assert ok and str(path) in message


def test_corrupted_cached_download_is_fetched_again(server, weights_file, isolated_cache):
    _, sha = weights_file
    url = server.base + "/ok/model.safetensors"
    path = W.download(url, sha)
    path.write_bytes(b"damaged")
    assert W.download(url, sha) == path and W.sha256_file(path) == sha
    assert server.hits["ok"] == 2


@pytest.mark.parametrize(
    "route, sha, timeout, match",
    [
        ("missing", None, 5.0, "HTTP 404"),
        ("error", None, 5.0, "HTTP 500"),
        ("silent", None, 0.3, "timed out"),
        ("stall", None, 0.3, "timed out"),
        ("short", None, 5.0, "cut short"),
        ("ok", "0" * 64, 5.0, "corrupt or tampered with"),
    ],
)
def test_download_failures_leave_nothing(server, isolated_cache, route, sha, timeout, match):
    url = f"{server.base}/{route}/model.safetensors"
    with pytest.raises(WeightsError, match=match) as e:
        W.download(url, sha, timeout=timeout)
    assert url in str(e.value) and "\n" not in str(e.value)
    assert cache_files(isolated_cache) == []
    assert server.hits[route] == 1


def test_cut_short_download_through_load_model(server, weights_file, isolated_cache):
    size = len(weights_file[0])
    with pytest.raises(WeightsError, match=f"cut short: .* before all {size} bytes"):
        W.load_model(server.base + "/short/model.safetensors")
    assert cache_files(isolated_cache) == []


def test_unreachable_server_is_a_clear_error(isolated_cache):
    import socket

    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(WeightsError, match=f"cannot connect to 127.0.0.1:{port}: .*refused"):
        W.download(f"http://127.0.0.1:{port}/m.safetensors", timeout=2.0)
    assert cache_files(isolated_cache) == []


def test_download_file_names_are_sanitised(tmp_path):
    name = W._url_filename("https://example.invalid/a/..%2F..%2Fevil%20name.safetensors?x=1")
    assert "/" not in name and ".." not in name and name.endswith("evil_name.safetensors")
    assert W._url_filename("https://example.invalid/") != W._url_filename("https://other.invalid/")
