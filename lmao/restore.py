"""Results put back by `dvc pull` / `dvc checkout`, made trusted by Snakemake again only
where `dvc.lock` vouches for them under this config and code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


class RestoreError(RuntimeError):
    """Restored results that DVC does not vouch for under this config and code."""


def dvc_changes(stage: str) -> dict:
    """What `dvc status` says differs between the workspace and `dvc.lock` for `stage`
    (config, code or results); empty when the restored results are what the lock records."""
    try:
        result = subprocess.run(["dvc", "status", "--json", stage], capture_output=True,
                                text=True)
    except FileNotFoundError:
        raise RestoreError("dvc is not installed (pip install -e '.[dvc]')") from None
    if result.returncode != 0:
        raise RestoreError(f"dvc status {stage}: {result.stderr.strip() or result.stdout}")
    return json.loads(result.stdout.strip() or "{}")


def restore(config_path: str | Path, check_dvc: bool = True) -> None:
    """Make Snakemake trust results that `dvc pull` / `dvc checkout` put back.

    DVC restores files with new timestamps in no set order, and a fresh clone has no
    Snakemake records (`.snakemake/`), so without this Snakemake would rerun jobs by
    timestamp and could not tell a later config edit from the settings the results were
    made with. First `dvc status` must say that the config, the code and the results are
    those `dvc.lock` records (else the results are not this config's: `dvc repro` is the
    way); then `snakemake --touch --forceall` sets timestamps in DAG order and records every
    job's params, as if it had just run.
    """
    from .config import load_config

    name = load_config(config_path)["name"]
    stage = f"workflow@{name}"
    if check_dvc:
        changes = dvc_changes(stage)
        if changes:
            raise RestoreError(
                f"{stage}: the config, code or results differ from what dvc.lock records, so "
                f"these results are not known to follow from {config_path}; run `dvc repro "
                f"{stage}` instead. dvc status: {json.dumps(changes)}")
    command = [sys.executable, "-m", "snakemake", "--touch", "--forceall", "--cores", "1",
               "--quiet", "all", "--configfile", str(config_path)]
    if subprocess.run(command).returncode != 0:
        raise RestoreError(f"{' '.join(command)} failed (see above)")
