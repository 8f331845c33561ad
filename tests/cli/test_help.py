"""Every `--help` page renders cleanly with the installed typer: no `<bool>` after flags,
no `{input}` in usage lines, and no help text eaten as Rich markup."""

from __future__ import annotations

import re

import pytest
import typer
from rich.errors import StyleSyntaxError
from rich.style import Style
from typer.testing import CliRunner

from deblur_cli.cli import app
from deblur_cli.cli.app import help_metavar

runner = CliRunner()
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BOX = re.compile(r"[│╭╮╰╯─┃┏┓┗┛━]")
# A Rich markup tag: an unescaped [ ... ] (Rich reads `\[` as a literal bracket).
TAG = re.compile(r"(?<!\\)\[([^\[\]\n]*)\]")


def _commands(group, path: tuple[str, ...] = ()):
    """(path, click-level command) for the root and every command below it."""
    yield path, group
    for name, cmd in sorted(getattr(group, "commands", {}).items()):
        yield from _commands(cmd, (*path, name))


COMMANDS = list(_commands(typer.main.get_command(app)))
IDS = [" ".join(p) or "deblur" for p, _ in COMMANDS]


def _render(path: tuple[str, ...]) -> str:
    # Wide enough that short help texts stay on one line; the terminal width is read per render.
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "160", "TERMINAL_WIDTH": "160"}, prog_name="deblur")
    assert result.exit_code == 0, result.output
    return ANSI.sub("", result.output)


def _flat(text: str) -> str:
    """The rendered page without panel borders, whitespace collapsed (undoes line wrapping)."""
    return " ".join(BOX.sub(" ", text).split())


def _sources(cmd) -> list[str]:
    """Every help text of a command as written in the code: its docstring and its parameters'."""
    texts = [cmd.help or ""]
    texts += [getattr(p, "help", None) or "" for p in cmd.params]
    return [t for t in texts if t]


def test_every_command_is_listed():
    names = {p[-1] for p, _ in COMMANDS if p}
    assert {"image", "batch", "train", "evaluate", "weights", "list", "export", "doctor"} <= names


@pytest.mark.parametrize(("path", "cmd"), COMMANDS, ids=IDS)
def test_help_has_no_rendering_artefacts(path, cmd):
    text = _render(path)
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert usage.split("Usage:")[1].split()[0] == "deblur"
    assert "{" not in usage and "}" not in usage, usage
    arguments = [p for p in cmd.params if p.param_type_name == "argument"]
    for arg in arguments:  # positional arguments read as their value names (FILE, FOLDER), like the help texts name them
        words = [w.removesuffix("...").strip("[]") for w in usage.split()]
        assert help_metavar(arg).removesuffix("...") in words, usage
    assert "<bool>" not in text and "<boolean>" not in text.lower()
    flags = [o for p in cmd.params if getattr(p, "is_flag", False) for o in p.opts]
    for line in text.splitlines():  # a flag's row shows no value type at all
        cells = BOX.sub(" ", line).split()
        if cells and cells[0] in {*flags, "--help"}:
            assert not any(c.startswith("<") for c in cells), line
    for leak in ("[/", "[bold", "[dim", "[green", "\\["):
        assert leak not in text, f"markup leaked into the page: {leak!r}"


@pytest.mark.parametrize(("path", "cmd"), COMMANDS, ids=IDS)
def test_help_text_is_not_eaten_as_markup(path, cmd):
    """A bracket in a help text is either a real Rich style or escaped, and then it is shown."""
    flat = _flat(_render(path))
    for source in _sources(cmd):
        for tag in TAG.findall(source):
            if tag.startswith("/"):
                continue
            try:
                Style.parse(tag)
            except StyleSyntaxError:
                pytest.fail(f"[{tag}] in {source!r} is not a style, so Rich would swallow it; escape it as \\[")
        for literal in re.findall(r"\\(\[[^\[\]\n]*\])", source):
            assert " ".join(literal.split()) in flat, f"{literal} is missing from the rendered help"


def test_tile_overlap_shows_the_engines_default():
    from deblur_cli.network.engine import DEFAULT_OVERLAP

    for command in ("image", "batch", "evaluate"):
        flat = _flat(_render((command,)))
        assert f"seams are blended. [default: {DEFAULT_OVERLAP}]" in flat, command


def test_tile_minimum_is_the_engines_floor_and_shown():
    from deblur_cli.cli.options import MIN_TILE
    from deblur_cli.network.engine import MIN_TILE as ENGINE_MIN_TILE

    assert MIN_TILE == ENGINE_MIN_TILE
    for command in ("image", "batch", "evaluate", "video"):
        assert f"Tile side in pixels, at least {MIN_TILE};" in _flat(_render((command,))), command


def test_flags_still_parse_as_flags_after_help_rendering(tmp_path):
    """Hiding a flag's type is display only: `--overwrite` still takes no value (if it took
    one it would swallow the path and the error would be a usage error, exit 2)."""
    _render(("image",))
    result = runner.invoke(app, ["image", "--overwrite", str(tmp_path / "missing.jpg")])
    assert result.exit_code == 3, result.output
    assert "missing.jpg" in result.output
