"""Short training runs of equal CPU time that choose a recipe by measurement.

    python bench/recipe_arms.py write weights/k3-cpu.toml /work/runs/arms     # one TOML per arm
    # train each arm from the same start, one thread each, two at a time on a 2-core machine:
    deblur train --data ../shared/data/photos/train --output /work/runs/arms/A-base \\
        --config /work/runs/arms/A-base.toml --init k3 --threads 1
    # score each arm's EMA weights, then tabulate:
    deblur weights export /work/runs/arms/A-base /work/runs/arms/scores/A-base.safetensors
    python bench/validate.py /work/runs/arms/scores/A-base.safetensors --json /work/runs/arms/scores/A-base.json
    python bench/recipe_arms.py table /work/runs/arms/scores --baseline k3.json

Every arm is the base recipe (its TOML, ``[model]`` and ``[synthesis]`` included) with the same
short schedule (``SHORT``: equal steps, so equal CPU time for one network) and one change: the
loss, the peak learning rate or the blur-strength distribution. ``table`` reads the JSON files
written by ``bench/validate.py --json`` and prints two Markdown tables: one row per arm and set
(mean gain, the gain per strength class, the worst image and the set's no-harm verdict; the
minimum and mean PSNR for do-no-harm sets), then one row per arm with the mean gain on each set,
the worst image of any graded set and the landing verdict (``validate.landing_verdict``, against
the first row, the baseline; a set missing from a file reads "-").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

#: Settings every arm shares: a short cosine from a lower peak (arms continue trained weights), and an
#: EMA short enough to leave the start in 120 steps (0.98 ** 120 = 0.09; 0.999 would keep 89% of it).
SHORT: dict[str, Any] = {
    "steps": 120, "lr": 2e-4, "warmup_steps": 10, "ema_decay": 0.98, "seed": 0, "checkpoint_every": 60,
    "val_every": 120,
}

#: Arm name -> (top-level overrides, [synthesis] overrides). ``A-base`` is the base recipe itself.
ARMS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "A-base": ({}, {}),
    "B-psnr": ({"loss": "psnr"}, {}),
    "C-msegrad": ({"loss": "mse_grad"}, {}),
    "D-lr6e4": ({"lr": 6e-4}, {}),
    "E-mild": ({}, {"strength_beta": [2.0, 5.0], "none_prob": 0.15}),
    "F-beta2.5": ({}, {"strength_beta": [2.0, 2.5]}),
}


def arm_config(base: dict[str, Any], top: dict[str, Any], synthesis: dict[str, Any]) -> dict[str, Any]:
    """The base recipe with the shared short schedule and one arm's overrides (base is not modified)."""
    cfg = {k: v for k, v in base.items() if not isinstance(v, dict)}
    cfg.update(SHORT)
    cfg.update(top)
    tables = {k: dict(v) for k, v in base.items() if isinstance(v, dict)}
    tables.setdefault("synthesis", {}).update(synthesis)
    return {**cfg, **tables}


def to_toml(cfg: dict[str, Any]) -> str:
    """TOML text of a config with scalar, list and one-level table values (all a recipe holds)."""
    lines = [f"{k} = {_value(v)}" for k, v in cfg.items() if not isinstance(v, dict)]
    for name, table in cfg.items():
        if isinstance(table, dict):
            lines += ["", f"[{name}]", *(f"{k} = {_value(v)}" for k, v in table.items())]
    return "\n".join(lines) + "\n"


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, (int, float)):
        return repr(v)
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def write_arms(base_file: Path, out_dir: Path) -> list[Path]:
    """Write ``<arm>.toml`` for every arm into ``out_dir``; returns the paths."""
    with open(base_file, "rb") as f:
        base = tomllib.load(f)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, (top, synthesis) in ARMS.items():
        path = out_dir / f"{name}.toml"
        header = f"# Issue 10 part 3, arm {name}: {base_file.name} with {_describe(top, synthesis)}\n"
        path.write_text(header + to_toml(arm_config(base, top, synthesis)), encoding="utf-8")
        paths.append(path)
    return paths


def _describe(top: dict[str, Any], synthesis: dict[str, Any]) -> str:
    changes = [f"{k} = {_value(v)}" for k, v in {**top, **synthesis}.items()]
    return ", ".join(changes) if changes else "no change"


def table(scores: dict[str, dict]) -> str:
    """Markdown table of ``bench/validate.py --json`` results, one row per name and set."""
    head = "| arm | set | gain | mild / medium / strong | worst image | no harm |\n|---|---|---|---|---|---|"
    rows = []
    for name, result in scores.items():
        for set_name, s in result["sets"].items():
            if s.get("job") == "harm":
                rows.append(f"| {name} | {set_name} | min {s['min_psnr']:.2f} dB | mean {s['psnr']:.2f} dB | | |")
                continue
            classes = " / ".join(f"{v['gain']:+.2f}" for v in s["per_class"].values())
            worst = f"{s['worst']['gain']:+.2f} ({s['worst']['name']})"
            rows.append(
                f"| {name} | {set_name} | {s['gain']:+.3f} | {classes} | {worst} | {'yes' if s['no_harm'] else 'no'} |"
            )
    return "\n".join([head, *rows, "", landing_table(scores)])


def landing_table(scores: dict[str, dict]) -> str:
    """One row per name: mean gain on each set (minimum PSNR on do-no-harm sets), the worst image
    of any graded set, and the landing verdict against the first row (the baseline)."""
    import validate  # bench/validate.py (imports the package's evaluation code)

    names: list[str] = []
    for result in scores.values():
        names += [n for n in result["sets"] if n not in names]
    head = "| arm | " + " | ".join(names) + " | worst image (any set) | lands |\n|---|" + "---|" * len(names) + "---|---|"
    baseline = next(iter(scores.values()))["sets"]
    rows = []
    for name, result in scores.items():
        sets = result["sets"]
        cells = [_cell(sets[n]) if n in sets else "-" for n in names]
        graded = [n for n in sets if sets[n].get("job") != "harm"]
        worst_set = min(graded, key=lambda n: sets[n]["worst"]["gain"])
        w = sets[worst_set]["worst"]
        lands = "baseline" if sets is baseline else ("yes" if validate.landing_verdict(sets, baseline)["lands"] else "no")
        rows.append(f"| {name} | " + " | ".join(cells) + f" | {w['gain']:+.2f} ({worst_set}: {w['name']}) | {lands} |")
    return "\n".join([head, *rows])


def _cell(s: dict) -> str:
    return f"{s['min_psnr']:.2f} dB" if s.get("job") == "harm" else f"{s['gain']:+.3f}"


def read_scores(folder: Path, baseline: str | None) -> dict[str, dict]:
    """Every ``*.json`` in ``folder`` by stem, the baseline (if named) first."""
    files = sorted(folder.glob("*.json"))
    if baseline:
        files.sort(key=lambda p: p.name != baseline)
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in files}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write", help="write one TOML per arm")
    w.add_argument("base", type=Path, help="the base recipe (TOML)")
    w.add_argument("out", type=Path, help="folder for the arms' TOML files")
    t = sub.add_parser("table", help="tabulate bench/validate.py --json results")
    t.add_argument("scores", type=Path, help="folder of <arm>.json files")
    t.add_argument("--baseline", help="file name of the row to put first (e.g. k3.json)")
    args = ap.parse_args(argv)
    if args.command == "write":
        for path in write_arms(args.base, args.out):
            print(path)
        return 0
    scores = read_scores(args.scores, args.baseline)
    if not scores:
        print(f"error: no *.json in {args.scores}", file=sys.stderr)
        return 1
    print(table(scores))
    return 0


if __name__ == "__main__":
    sys.exit(main())
