"""`dvc repro` runs the workflow, a second `dvc repro` does nothing, and after `dvc checkout`
(new timestamps) Snakemake has nothing to do either. Runs in a fresh clone of this
repository next to a link to the shared data, since the test config reads ../shared/data."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import REPO, SHARED_DATA

pytestmark = pytest.mark.slow


def run(args: list[str], cwd: Path) -> str:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    if shutil.which("dvc") is None:
        pytest.skip("dvc is not installed (pip install -e '.[dvc]')")
    if not (SHARED_DATA / "wnut17").exists():
        pytest.skip(f"the test config reads {SHARED_DATA}, which is absent")
    root = tmp_path_factory.mktemp("dvc")
    (root / "shared").symlink_to(SHARED_DATA.parent)
    run(["git", "clone", "--quiet", str(REPO), str(root / "repo")], cwd=root)
    return root / "repo"


def test_dvc_repro_twice_then_checkout(clone):
    first = run(["dvc", "repro", "workflow@test"], cwd=clone)
    assert "Running stage 'workflow@test'" in first
    assert (clone / "results" / "test" / "metrics.json").exists()

    second = run(["dvc", "repro", "workflow@test"], cwd=clone)
    assert "didn't change, skipping" in second
    assert "Running stage" not in second

    shutil.rmtree(clone / "results" / "test")
    run(["dvc", "checkout", "workflow@test"], cwd=clone)
    assert (clone / "results" / "test" / "scores.csv").exists()
    dry = run(["snakemake", "-n", "--configfile", "config/test.yaml"], cwd=clone)
    assert "Nothing to be done" in dry

    shown = run(["dvc", "metrics", "show"], cwd=clone)
    assert "polarity" in shown
