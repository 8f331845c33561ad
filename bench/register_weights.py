"""Export a training run's checkpoint into weights/ and register it (maintainers' tool).

    python bench/register_weights.py RUN_DIR NAME --description "..." [--step N] [--default]

Writes weights/NAME.safetensors and adds or replaces the entry NAME in
weights/registry.json with its sha256, architecture, licence and provenance.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from deblur_cli.files.fsutil import atomic_path
from deblur_cli.training import export_weights
from deblur_cli.weights import load_state

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("name")
    ap.add_argument("--step", type=int, help="checkpoint step (default: newest)")
    ap.add_argument("--description", default="")
    ap.add_argument("--provenance", default="")
    ap.add_argument("--licence", default="MIT")
    ap.add_argument("--default", action="store_true", help="make it the default weights")
    args = ap.parse_args()

    file = f"{args.name}.safetensors"
    _, step, sha = export_weights(args.run_dir, ROOT / "weights" / file, step=args.step)
    config = load_state(str(ROOT / "weights" / file))[1].config

    reg_path = ROOT / "weights" / "registry.json"
    registry = json.loads(reg_path.read_text())
    registry["weights"] = [e for e in registry["weights"] if e["name"] != args.name]
    registry["weights"].append({
        "name": args.name, "file": file, "sha256": sha, "config": config.to_dict(),
        "licence": args.licence, "provenance": args.provenance or f"deblur train, step {step}",
        "description": args.description,
    })
    if args.default or registry.get("default") is None:
        registry["default"] = args.name
    with atomic_path(reg_path, overwrite=True) as tmp:  # the registry is rewritten in place
        tmp.write_text(json.dumps(registry, indent=2) + "\n")
    print(f"registered {args.name}: step {step}, sha256 {sha}")


if __name__ == "__main__":
    main()
