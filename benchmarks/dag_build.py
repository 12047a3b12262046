"""How long `snakemake -n` takes to build a config's DAG, and what importing the workflow's
own code costs within it; optionally beside another checkout (e.g. an older commit), run
alternately so both see the same machine.

    python benchmarks/dag_build.py --config config/demo.yaml --runs 7
    python benchmarks/dag_build.py --config config/demo.yaml --other ../old-checkout

Prints, per checkout, the median wall and CPU seconds of a dry run, and the seconds spent
importing the modules the Snakefile imports (`python -X importtime`). SLURM's executor
plugin, when installed, asks `scontrol` for the cluster's config at every Snakemake start
(9 s when no controller answers): measure with the controller up or SLURM absent.
"""

from __future__ import annotations

import argparse
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def dry_run(checkout: Path, config: str) -> tuple[float, float]:
    """(wall, CPU) seconds of one `snakemake -n` in `checkout`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "snakemake", "-n", "--quiet", "--configfile", config],
                   cwd=checkout, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def import_seconds(checkout: Path) -> float:
    """Seconds to import what the Snakefile and rules/common.smk import from `lmao`."""
    snakefiles = [checkout / "Snakefile", *sorted((checkout / "rules").glob("*.smk"))]
    modules = sorted({m for f in snakefiles
                      for m in re.findall(r"^from (lmao[\w.]*) import", f.read_text(), re.M)})
    code = "; ".join(f"import {m}" for m in modules)
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=checkout,
                         capture_output=True, text=True, check=True).stderr
    total = 0
    for line in out.splitlines():
        fields = line.split("|")
        if len(fields) == 3 and fields[2].strip() in modules:
            total += int(fields[1])
    return total / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="config/demo.yaml")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--other", type=Path, help="another checkout to time beside this one")
    args = parser.parse_args()
    checkouts = {"this": REPO, **({"other": args.other.resolve()} if args.other else {})}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in checkouts}
    for path in checkouts.values():
        dry_run(path, args.config)  # warm the file cache and the source digests
    for _ in range(args.runs):
        for name, path in checkouts.items():
            times[name].append(dry_run(path, args.config))
    for name, path in checkouts.items():
        wall = statistics.median(t[0] for t in times[name])
        cpu = statistics.median(t[1] for t in times[name])
        print(f"{name} ({path}): snakemake -n --configfile {args.config}: median of "
              f"{args.runs}: {wall:.2f} s wall, {cpu:.2f} s CPU; importing the workflow's "
              f"lmao modules: {import_seconds(path):.2f} s")


if __name__ == "__main__":
    main()
