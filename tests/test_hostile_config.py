"""A hostile config (issue 24): nothing a config says can delete results, hang a run or ask
for absurd training. Names that become folders are safe slugs, sources are regular files or
folders, and every hyper-parameter a run or a search sample can get is in range; each is
refused at start-up (`lmao check-config`, Snakemake) with a message naming the key."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from lmao.config import ConfigError, load_config, load_schema, validate_config
from lmao.digests import SourceDigests
from lmao.fileio import InputError

from .conftest import REPO, SNAKEMAKE

SAFE = r"is not a safe name \(letters, digits, _ and -, starting with a letter or digit; it"


def base_config() -> dict:
    return yaml.safe_load((REPO / "config" / "test.yaml").read_text())


def written(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    return path


def check_config(path: Path) -> subprocess.CompletedProcess:
    """`lmao check-config` in its own process, so a hang fails the test instead of the suite."""
    return subprocess.run([sys.executable, "-m", "lmao", "check-config", "--config", str(path)],
                          capture_output=True, text=True, timeout=60)


@contextlib.contextmanager
def within(seconds: int) -> Iterator[None]:
    """Fail (TimeoutError) instead of hanging where a call would block, e.g. on a FIFO."""
    def expire(signum, frame):
        raise TimeoutError(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------- names that become paths

def renamed(config: dict, section: str, name: str) -> None:
    """Give the first entry of `section` (a dotted key path) the name `name`."""
    *parents, last = section.split(".")
    for key in parents:
        config = config[key]
    entries = config.setdefault(last, {})
    if not entries:  # test.yaml has no downloads
        entries["x"] = {"url": "https://example.org/x.zip", "unverified": True}
    first = next(iter(entries))
    entries[name] = entries.pop(first)


HOSTILE_NAMES = ["..", ".", "a/b", "../x", "a b", "café", "-x", "_x", "x.y", "x\n", ""]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
@pytest.mark.parametrize("section", ["corpora", "vectors", "parsers", "pretrain", "tasks",
                                     "finetune.multitask", "downloads"])
def test_an_unsafe_entry_name_is_refused_naming_its_section(section, name):
    config = base_config()
    renamed(config, section, name)
    with pytest.raises(ConfigError, match=rf"^at {section}: the name {re.escape(repr(name))} "
                       rf"{SAFE}") as err:
        validate_config(config)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_an_unsafe_experiment_name_is_refused(name):
    config = base_config()
    config["name"] = name
    with pytest.raises(ConfigError, match=rf"^at name: the name {re.escape(repr(name))} {SAFE}"):
        validate_config(config)


@pytest.mark.parametrize("name", ["a", "A-1", "x_y-z", "9lives"])
def test_safe_names_pass(name):
    config = base_config()
    config["name"] = name
    for section in ("corpora", "tasks", "downloads"):  # nothing refers to test.yaml's first task
        renamed(config, section, name)
    config["vectors"]["lee_floret"]["train"]["corpus"] = name
    for spec in [*config["pretrain"].values(), *config["finetune"]["multitask"].values()]:
        spec["corpus"] = name
    validate_config(config)


def test_check_config_refuses_a_task_named_dot_dot_in_one_line(tmp_path):
    config = base_config()
    renamed(config, "tasks", "..")
    result = check_config(written(tmp_path, config))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert "at tasks: the name '..' is not a safe name" in result.stderr


# ---------------------------------------------------------------- sources that never end

def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


def test_check_config_refuses_a_fifo_source_without_hanging(tmp_path):
    path = fifo(tmp_path)
    config = base_config()
    config["corpora"]["lee"]["sources"].append({"type": "lines", "path": str(path)})
    result = check_config(written(tmp_path, config))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (f"corpora.lee.sources[1].path: {path} is not a regular file or folder (a FIFO)"
            in result.stderr)


def test_a_character_device_source_is_refused(tmp_path):
    config = base_config()
    config["tasks"]["wnut17"]["source"]["train"] = "/dev/zero"
    with within(60), pytest.raises(ConfigError, match=r"tasks\.wnut17\.source\.train: /dev/zero "
                                   r"is not a regular file or folder \(a character device\)"):
        load_config(written(tmp_path, config))


def test_a_fifo_source_stops_snakemake_before_the_dag(tmp_path):
    """The reported hang: `snakemake -n` digested the FIFO at "Building DAG of jobs"."""
    path = fifo(tmp_path)
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config["corpora"]["demo_text"]["sources"].append({"type": "lines", "path": str(path)})
    result = subprocess.run([*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory",
                             str(tmp_path), "--configfile", str(written(tmp_path, config)),
                             "-n"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert (f"corpora.demo_text.sources[2].path: {path} is not a regular file or folder "
            "(a FIFO)") in result.stdout + result.stderr


@pytest.mark.parametrize(("make", "kind"), [(fifo, "a FIFO"),
                                            (lambda _: Path("/dev/zero"), "a character device")])
def test_the_source_digest_refuses_what_it_could_not_finish_reading(tmp_path, make, kind):
    path = make(tmp_path)
    with within(60), pytest.raises(InputError, match=rf"{path}: not a regular file or folder "
                                   rf"\({kind}\)"):
        SourceDigests(tmp_path / "cache.json").of({"k": str(path)})


def test_the_source_digest_refuses_a_fifo_inside_a_source_folder(tmp_path):
    folder = tmp_path / "aclImdb" / "train"
    folder.mkdir(parents=True)
    (folder / "1_7.txt").write_text("a film\n")
    inside = fifo(folder)
    with within(60), pytest.raises(InputError, match=rf"^{inside}: not a regular file or "
                                   rf"folder \(a FIFO\) inside the source folder {tmp_path}"):
        SourceDigests(tmp_path / "cache.json").of({"k": str(tmp_path / "aclImdb")})


# ---------------------------------------------------------------- absurd hyper-parameters

def searched(space: dict, **finetune) -> dict:
    config = base_config()
    config["finetune"].update(search={"samples": 4, "seed": 0, "space": space}, **finetune)
    return config


@pytest.mark.parametrize(("space", "message"), [
    ({"batch_words": {"choice": ["lots"]}},
     r"finetune\.search\.space\.batch_words\.choice\[0\]: 'lots' is not of type 'integer'"),
    ({"batch_words": {"choice": [500, 0]}},
     r"finetune\.search\.space\.batch_words\.choice\[1\]: 0 is less than the minimum of 1"),
    ({"batch_words": {"choice": [2.5]}},
     r"finetune\.search\.space\.batch_words\.choice\[0\]: 2\.5 is not of type 'integer'"),
    ({"batch_words": {"uniform": [500, 2000]}},
     r"finetune\.search\.space\.batch_words\.uniform: draws fractions, but batch_words is a "
     r"whole number"),
    ({"learn_rate": {"uniform": [-0.001, 0.01]}},
     r"finetune\.search\.space\.learn_rate\.uniform\[0\]: -0\.001 is less than or equal to the "
     r"minimum of 0"),
    ({"learn_rate": {"choice": [0.001, -1]}},
     r"finetune\.search\.space\.learn_rate\.choice\[1\]: -1 is less than or equal to the "
     r"minimum of 0"),
    ({"dropout": {"uniform": [0.1, 1.5]}},
     r"finetune\.search\.space\.dropout\.uniform\[1\]: 1\.5 is greater than or equal to the "
     r"maximum of 1"),
    ({"dropout": {"choice": [0.2, 1]}},
     r"finetune\.search\.space\.dropout\.choice\[1\]: 1 is greater than or equal to the "
     r"maximum of 1"),
    ({"dropout": {"uniform": [-0.1, 0.3]}},
     r"finetune\.search\.space\.dropout\.uniform\[0\]: -0\.1 is less than the minimum of 0"),
    ({"beta2": {"choice": [0.999, 1.0]}},
     r"finetune\.search\.space\.beta2\.choice\[1\]: 1\.0 is greater than or equal to the "
     r"maximum of 1"),
    ({"learn_rate": {"log_uniform": [0.01, 0.0001]}},
     r"finetune\.search\.space\.learn_rate\.log_uniform: \[0\.01, 0\.0001\] is not \[low, high\] "
     r"with low below high"),
    ({"dropout": {"uniform": [0.3, 0.3]}},
     r"finetune\.search\.space\.dropout\.uniform: \[0\.3, 0\.3\] is not \[low, high\]"),
    ({"freeze_encoder_epochs": {"choice": [0, 2]}},
     r"finetune\.search\.space\.freeze_encoder_epochs\.choice\[1\]: 2 is not less than "
     r"finetune\.epochs \(2\): the encoder would stay frozen for the whole run"),
])
def test_every_value_a_search_can_draw_is_in_range(space, message):
    with pytest.raises(ConfigError, match=rf"^{message}"):
        validate_config(searched(space))


def test_a_search_space_in_range_passes():
    validate_config(searched({"learn_rate": {"log_uniform": [0.0001, 0.01]},
                              "dropout": {"uniform": [0.0, 0.5]},
                              "batch_words": {"choice": [500, 1000]},
                              "freeze_encoder_epochs": {"choice": [0, 1]}}))


def test_the_search_space_keys_are_the_hyperparameters():
    """The space's values are checked against `hyperparameters`' rules: one per key."""
    finetune = load_schema()["properties"]["finetune"]["properties"]
    keys = finetune["search"]["properties"]["space"]["propertyNames"]["enum"]
    assert sorted(keys) == sorted(finetune["hyperparameters"]["properties"])


@pytest.mark.parametrize(("edit", "message"), [
    (lambda c: c["finetune"].update(epochs=5, patience=8),
     r"^finetune\.patience: 8 is more than finetune\.epochs \(5\): "),
    (lambda c: c["finetune"].update(epochs=5, hyperparameters={"freeze_encoder_epochs": 5}),
     r"^finetune\.hyperparameters\.freeze_encoder_epochs: 5 is not less than finetune\.epochs "
     r"\(5\): the encoder would stay frozen for the whole run, never trained"),
    (lambda c: c["finetune"].update(hyperparameters={"learn_rate": -0.001}),
     r"^at finetune\.hyperparameters\.learn_rate: -0\.001 is less than or equal to the minimum"),
    (lambda c: c["finetune"].update(hyperparameters={"dropout": 1}),
     r"^at finetune\.hyperparameters\.dropout: 1 is greater than or equal to the maximum of 1"),
    (lambda c: c["finetune"].update(hyperparameters={"batch_words": 0}),
     r"^at finetune\.hyperparameters\.batch_words: 0 is less than the minimum of 1"),
    (lambda c: c["pretrain"]["lmao"]["settings"].update(dropout=1.0),
     r"^at pretrain\.lmao\.settings\.dropout: 1\.0 is greater than or equal to the maximum"),
    (lambda c: c["pretrain"]["lmao"]["settings"].update(mask_prob=1),
     r"^at pretrain\.lmao\.settings\.mask_prob: 1 is greater than or equal to the maximum"),
    (lambda c: c["finetune"]["multitask"]["lmao_aux"]["settings"].update(dropout=5),
     r"^at finetune\.multitask\.lmao_aux\.settings\.dropout: 5 is greater than or equal"),
    (lambda c: c["finetune"]["multitask"]["lmao_aux"]["settings"].update(batch_words="lots"),
     r"^at finetune\.multitask\.lmao_aux\.settings\.batch_words: 'lots' is not of type"),
])
def test_absurd_training_settings_are_refused(edit, message):
    config = base_config()
    edit(config)
    with pytest.raises(ConfigError, match=message):
        validate_config(config)


@pytest.mark.parametrize("finetune", [{"epochs": 5, "patience": 5},
                                      {"epochs": 5, "hyperparameters":
                                       {"freeze_encoder_epochs": 4, "dropout": 0.0}}])
def test_settings_at_the_edge_of_the_range_pass(finetune):
    config = base_config()
    config["finetune"].update(finetune)
    validate_config(config)
