"""Every module of the package stays under 400 lines (issue 13).

A module that grows past the limit is split by responsibility (as ``files/samples.py`` was
taken out of ``files/decode.py``), not trimmed of docstrings or blank lines.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "deblur_cli"
MAX_LINES = 400  # a module must have fewer lines than this


def _line_count(path: Path) -> int:
    """Lines as ``wc -l`` sees them for a file that ends in a newline."""
    return len(path.read_text(encoding="utf-8").splitlines())


def _too_long(root: Path, limit: int = MAX_LINES) -> dict[str, int]:
    """{path relative to root: lines} of the ``.py`` files under root with ``limit`` lines or more."""
    return {
        str(p.relative_to(root)): n
        for p in sorted(root.rglob("*.py"))
        if (n := _line_count(p)) >= limit
    }


def test_the_counter_sees_long_files(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "short.py").write_text("x = 1\n" * (MAX_LINES - 1))
    (tmp_path / "sub" / "exact.py").write_text("x = 1\n" * MAX_LINES)
    (tmp_path / "long.py").write_text("x = 1\n" * (MAX_LINES + 50))
    (tmp_path / "notes.txt").write_text("x\n" * (MAX_LINES * 2))
    assert _too_long(tmp_path) == {"long.py": MAX_LINES + 50, str(Path("sub", "exact.py")): MAX_LINES}


def test_the_package_is_where_the_test_looks():
    modules = list(PACKAGE.rglob("*.py"))
    assert PACKAGE / "files" / "decode.py" in modules
    assert any(p.parent.name == "weights" for p in modules)  # subpackages are walked too
    assert _line_count(PACKAGE / "files" / "decode.py") > 100


def test_every_module_is_under_the_line_limit():
    too_long = _too_long(PACKAGE)
    assert not too_long, f"modules with {MAX_LINES} lines or more (split them): " + ", ".join(
        f"{name} ({n})" for name, n in too_long.items()
    )
