import json
import subprocess
import sys

from lmao.cli import main

from .test_config import REPO


def test_check_config_summarises_the_grid(capsys):
    assert main(["check-config", "--config", str(REPO / "config" / "demo.yaml")]) == 0
    assert ("5 inits (references included) × 3 tasks (low-data variants included) × 1 "
            "hyper-parameter samples × 2 seeds = 30 fine-tuning jobs") in capsys.readouterr().out


def test_bad_config_exits_2_with_the_key(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    assert main(["check-config", "--config", str(bad)]) == 2
    assert "'corpora' is a required property" in capsys.readouterr().err


def test_cli_runs_tokenize_as_a_module(tmp_path):
    out = tmp_path / "store"
    result = subprocess.run(
        [sys.executable, "-m", "lmao", "tokenize", "lee", "--config",
         str(REPO / "config" / "test.yaml"), "--out", str(out)],
        capture_output=True, text=True, check=True,
    )
    meta = json.loads(result.stdout)
    assert meta["n_words"] == json.loads((out / "meta.json").read_text())["n_words"] > 50_000
