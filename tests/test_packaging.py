"""The built wheel carries the bundled weights and the registry, next to the weights module."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_contains_bundled_weights(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("deblur-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "deblur_cli/weights.py" in names and "deblur_cli/cli.py" in names
    assert "deblur_cli/bundled_weights/registry.json" in names
    registry = json.loads((ROOT / "weights" / "registry.json").read_text())
    for entry in registry["weights"]:
        assert f"deblur_cli/bundled_weights/{entry['file']}" in names
    assert "deblur_cli/bundled_weights/README.md" in names  # the model card travels with them
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "deblur = deblur_cli.cli:main" in entry_points
