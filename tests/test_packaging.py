"""Packaging: `python -m build` makes an sdist and a wheel that carry every module, the bundled
weights and the registry; every import is a declared dependency; the name `deblur-cli` and the
version agree everywhere a user sees them."""

from __future__ import annotations

import ast
import hashlib
import json
import re
import subprocess
import sys
import tarfile
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from deblur_cli import __version__
from deblur_cli.tools.doctor import DISTRIBUTION

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PACKAGE = ROOT / "deblur_cli"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    return _canonical(re.split(r"[\s<>=!~;\[(]", requirement.strip(), maxsplit=1)[0])


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """sdist and wheel built as a release would be (the wheel from the sdist), offline."""
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True, text=True, cwd=out,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


def _wheel(dist: Path) -> zipfile.ZipFile:
    (wheel,) = dist.glob("*.whl")
    assert wheel.name == f"deblur_cli-{__version__}-py3-none-any.whl"
    return zipfile.ZipFile(wheel)


def test_wheel_holds_every_module_and_the_bundled_weights(dist):
    wheel = _wheel(dist)
    names = set(wheel.namelist())
    # Every source module, so a subpackage missing from pyproject's list cannot slip through.
    for source in PACKAGE.rglob("*.py"):
        assert source.relative_to(ROOT).as_posix() in names, f"{source} is not in the wheel"
    assert "deblur_cli/bundled_weights/registry.json" in names
    assert "deblur_cli/bundled_weights/README.md" in names  # the model card travels with them
    registry = json.loads((ROOT / "weights" / "registry.json").read_text(encoding="utf-8"))
    assert registry["weights"], "the registry lists no weights"
    for entry in registry["weights"]:
        data = wheel.read(f"deblur_cli/bundled_weights/{entry['file']}")
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["file"]
    assert json.loads(wheel.read("deblur_cli/bundled_weights/registry.json")) == registry
    info = f"deblur_cli-{__version__}.dist-info"
    assert "deblur = deblur_cli.cli:main" in wheel.read(f"{info}/entry_points.txt").decode()
    meta = wheel.read(f"{info}/METADATA").decode()
    assert re.search(rf"^Name: {DISTRIBUTION}$", meta, re.M) and re.search(rf"^Version: {re.escape(__version__)}$", meta, re.M)
    assert any(line.startswith("Requires-Dist: typer") for line in meta.splitlines())


def test_sdist_holds_the_sources_weights_and_readme(dist):
    (sdist,) = dist.glob("*.tar.gz")
    assert sdist.name == f"deblur_cli-{__version__}.tar.gz"
    top = f"deblur_cli-{__version__}"
    names = set(tarfile.open(sdist).getnames())
    for needed in ("pyproject.toml", "README.md", "deblur_cli/cli/__init__.py", "weights/registry.json", "weights/README.md"):
        assert f"{top}/{needed}" in names, needed
    for entry in json.loads((ROOT / "weights" / "registry.json").read_text(encoding="utf-8"))["weights"]:
        assert f"{top}/weights/{entry['file']}" in names


def test_every_subpackage_is_listed_in_pyproject():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    for init in PACKAGE.rglob("__init__.py"):
        name = ".".join(init.parent.relative_to(ROOT).parts)
        assert name in listed, f"{name} is missing from [tool.setuptools] packages in pyproject.toml"


def _imported_modules() -> dict[str, Path]:
    """Top-level names of every absolute import in the package (also those inside functions)."""
    found: dict[str, Path] = {}
    for source in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], source)
    return found


def test_every_import_is_a_declared_dependency():
    """What the package imports must be declared: a fresh install only has what is declared
    (issue 11: `import click` worked only where click happened to be installed)."""
    project = PYPROJECT["project"]
    declared = {_requirement_name(r) for r in project["dependencies"]}
    optional = {_requirement_name(r) for group in project.get("optional-dependencies", {}).values() for r in group}
    stdlib = set(sys.stdlib_module_names) | {"deblur_cli", "__future__"}
    to_distributions = metadata.packages_distributions()
    for module, source in sorted(_imported_modules().items()):
        if module in stdlib:
            continue
        distributions = {_canonical(d) for d in to_distributions.get(module, [module])}
        assert distributions & (declared | optional), (
            f"{source.relative_to(ROOT)} imports {module} (from {', '.join(sorted(distributions))}), "
            "which pyproject.toml does not declare"
        )


def test_typer_range_is_pinned_at_both_ends():
    (typer,) = [r for r in PYPROJECT["project"]["dependencies"] if _requirement_name(r) == "typer"]
    assert ">=" in typer and "<" in typer.replace("<=", ""), typer


def test_name_and_version_agree_everywhere():
    assert PYPROJECT["project"]["name"] == DISTRIBUTION == "deblur-cli"
    assert PYPROJECT["project"]["scripts"]["deblur"] == "deblur_cli.cli:main"
    version = subprocess.run(
        [sys.executable, "-m", "deblur_cli", "--version"], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout.strip()
    assert version == f"{DISTRIBUTION} {__version__}"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"`{DISTRIBUTION}`" in readme
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(rf"^## \[{re.escape(__version__)}\]", changelog, re.M)
    assert DISTRIBUTION in changelog
    try:
        installed = metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        pytest.skip(f"{DISTRIBUTION} is not installed here (running from a plain checkout)")
    assert installed == __version__


def test_readme_installs_extras_from_the_checkout_and_cpu_torch():
    """Issue 27 item 10: the README showed `pip install "deblur-cli[serve]"` (works only once the
    checkout is installed) and no way to avoid PyPI's several-GB CUDA torch on Linux. Each
    extra is shown as `pip install ".[NAME]"` and as a `pipx inject` of exactly its
    requirements; the CPU index is named; the first two bash blocks stay what .ci/run runs."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "deblur-cli[" not in readme.replace('pip install "deblur-cli[serve]"`\nworks only once', "")
    assert "--index-url https://download.pytorch.org/whl/cpu" in readme
    assert "sudo apt-get install chromium chromium-driver" in readme  # the browser test's needs (item 15)
    for extra, requirements in PYPROJECT["project"]["optional-dependencies"].items():
        if extra == "test":
            continue
        assert f'python3 -m pip install ".[{extra}]"' in readme, extra
        injected = re.search(r"`pipx inject deblur-cli ([^`]*)`[^\n]*\n", readme.split(f"| `{extra}` |", 1)[1])
        assert injected is not None, extra
        assert injected.group(1).split() == [f'"{r}"' for r in requirements], extra
    blocks = re.findall(r"^```bash\n(.*?)^```", readme, re.M | re.S)[:2]
    assert [len(b.strip().splitlines()) for b in blocks] == [1, 1]
    assert "deblur docs/sample/blurry.jpg -o sharp.jpg" in blocks[0] and "pytest" in blocks[1]
