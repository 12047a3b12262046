"""The SLURM profile against a real SLURM: a one-node cluster started on localhost
(tests/slurm/local_cluster.sh), the tiny config's text-classification branch submitted job by
job with sbatch through profiles/slurm, and its scores compared with the local run's."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from .conftest import REPO, SNAKEMAKE, run

CLUSTER_SCRIPT = REPO / "tests" / "slurm" / "local_cluster.sh"
CANNOT_HOST = 3  # the script's exit status when this machine cannot run the cluster
SCORE_KEYS = ["task", "pretrain_run", "words", "sample", "seed", "split", "epoch", "metric"]


@pytest.fixture(scope="session")
def slurm_env(tmp_path_factory) -> dict[str, str]:
    """Start the cluster (installing slurm-wlm and munge with apt if needed) or skip. It
    runs until the test session ends: once SLURM is installed, every Snakemake start asks
    the controller for its config (the executor plugin's `scontrol show config`), which
    waits 9 s for a controller that has stopped."""
    if os.environ.get("LMAO_SKIP_SLURM"):
        pytest.skip("LMAO_SKIP_SLURM is set")
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="pip install -e '.[slurm]'")
    if os.geteuid() != 0:
        pytest.skip("a local SLURM cluster needs root to start slurmctld and slurmd")
    if not shutil.which("slurmctld") and not shutil.which("apt-get"):
        pytest.skip("SLURM is not installed and apt-get is not available to install it")
    folder = tmp_path_factory.mktemp("slurm")
    started = subprocess.run(["bash", str(CLUSTER_SCRIPT), "start", str(folder)],
                             capture_output=True, text=True, timeout=300)
    if started.returncode == CANNOT_HOST:
        pytest.skip(f"no local SLURM here: {started.stderr.strip()}")
    assert started.returncode == 0, started.stdout + started.stderr
    env = {**os.environ,  # jobs inherit it (sbatch --export=ALL): this venv's python first
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    yield env
    subprocess.run(["bash", str(CLUSTER_SCRIPT), "stop", str(folder)], timeout=60)


def local_profile(folder: Path) -> Path:
    """profiles/slurm adapted to the one-node cluster: its partition, no GPU, two CPUs
    (fine-tunes submitted two to a job), and squeue for job status (no accounting daemon,
    so no sacct)."""
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    cpus = os.cpu_count() or 1
    profile["default-resources"].update(slurm_partition="debug", mem_mb=1500)
    for resources in profile["set-resources"].values():
        resources.pop("gpu", None)
        resources.update(slurm_partition="debug", mem_mb=2000)
    profile["set-threads"] = {rule: min(n, cpus) for rule, n in profile["set-threads"].items()}
    profile["set-threads"]["finetune"] = 1  # a group job runs 2 fine-tunes on the 2 CPUs
    profile["group-components"] = {"finetunes": 2}
    profile.update({"slurm-status-command": "squeue", "slurm-init-seconds-before-status-checks": 2,
                    "seconds-between-status-checks": 2, "jobs": 4, "latency-wait": 5})
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder


def textcat_config(folder: Path, config: dict) -> Path:
    """The tiny test config's textcat branch: corpus, vectors, two checkpoints, two seeds."""
    polarity = {k: v for k, v in config["tasks"]["polarity"].items() if k != "train_sizes"}
    finetune = {k: v for k, v in config["finetune"].items() if k != "multitask"}
    config = {**config, "tasks": {"polarity": polarity}, "finetune": finetune,
              "pretrain": {"lmao": config["pretrain"]["lmao"]}}
    config.pop("parsers", None)
    folder.mkdir(parents=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def snakemake_in(folder: Path, config: Path, *extra: str, env: dict | None = None):
    return run([*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(folder),
                "--configfile", str(config), *extra], cwd=folder, timeout=900, env=env)


@pytest.mark.slow
def test_the_slurm_profile_runs_real_jobs_that_match_a_local_run(slurm_env, finished_run,
                                                                tmp_path):
    local_results, local_config = finished_run
    config = textcat_config(tmp_path / "config", local_config)
    profile = local_profile(tmp_path / "profile")
    on_slurm = tmp_path / "on_slurm"
    on_slurm.mkdir()
    snakemake_in(on_slurm, config, "--profile", str(profile), env=slurm_env)

    # every job went through sbatch: SLURM knows them all, each with a kept log
    accounted = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%j %T"], env=slurm_env,
                               capture_output=True, text=True, check=True).stdout.split("\n")
    states = [line.split()[1] for line in accounted if line.strip()]
    slurm_logs = list((on_slurm / "logs" / "slurm").rglob("*.log"))
    assert states and set(states) == {"COMPLETED"}, accounted
    assert len(slurm_logs) >= len(states) >= 8
    rules = {p.relative_to(on_slurm / "logs" / "slurm").parts[0] for p in slurm_logs}
    assert "rule_pretrain" in rules and "rule_finetune" not in rules, rules
    assert any("finetunes" in rule for rule in rules), rules  # fine-tunes went in groups
    assert "rule_report" not in rules  # a localrule: it runs where Snakemake runs

    # same code, config and seeds on CPU: the very same checkpoints and scores as locally
    slurm_results = on_slurm / "results" / local_config["name"]
    for words in local_config["pretrain"]["lmao"]["checkpoints"]:
        checkpoint = Path("pretrain") / "lmao" / f"words-{words}.bin"
        assert (slurm_results / checkpoint).read_bytes() == (
            local_results / checkpoint).read_bytes()
    on_slurm_scores, local_scores = (
        pd.read_csv(results / "scores.csv").query("task == 'polarity'")
        .query("pretrain_run in ['none', 'lmao']")
        .sort_values(SCORE_KEYS).reset_index(drop=True)[[*SCORE_KEYS, "value"]]
        for results in (slurm_results, local_results))
    assert len(local_scores) > 0
    pd.testing.assert_frame_equal(on_slurm_scores, local_scores)
