from pathlib import Path

import pytest
import yaml

from lmao.config import ConfigError, load_config, validate_config
from lmao.grid import Experiment, human

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "config").glob("*.yaml")))
def test_shipped_configs_are_valid(name):
    """Schema and cross-references (the data a config names is a machine's: the cluster
    config's Reddit dump is not on this one)."""
    config = load_config(REPO / "config" / name, check_files=False)
    experiment = Experiment(config)
    inits = experiment.inits()
    assert inits[0].run == "none"
    assert len(inits) == 1 + sum(len(set(r.get("finetune_checkpoints", r["checkpoints"])))
                                 for r in config["pretrain"].values()
                                 ) + len(config["finetune"].get("multitask", {})) + len(
        config["finetune"].get("references", []))


def edited(tmp_path, change) -> Path:
    config = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    change(config)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_unknown_key_is_named(tmp_path):
    path = edited(tmp_path, lambda c: c["finetune"].update(epochz=3))
    with pytest.raises(ConfigError, match=r"at finetune: .*'epochz'"):
        load_config(path)


def test_dangling_reference_is_named(tmp_path):
    path = edited(tmp_path, lambda c: c["pretrain"]["lmao"].update(vectors="nope"))
    with pytest.raises(ConfigError, match=r"pretrain\.lmao\.vectors: no vector table named 'nope'"):
        load_config(path)


def test_reserved_run_name_is_refused(tmp_path):
    def change(config):
        config["pretrain"]["none"] = config["pretrain"].pop("lmao")

    with pytest.raises(ConfigError, match="reserved"):
        load_config(edited(tmp_path, change))


def test_previous_checkpoint_chain():
    experiment = Experiment(load_config(REPO / "config" / "demo.yaml"))
    assert experiment.previous_checkpoint("lmao", 100000) is None
    assert experiment.previous_checkpoint("lmao", 400000) == 200000
    with pytest.raises(ConfigError):
        experiment.previous_checkpoint("lmao", 123)


def test_human_word_counts():
    assert [human(n) for n in (0, 999, 5000, 100000, 2_500_000, 10**9)] == [
        "0", "999", "5k", "100k", "2.5M", "1G"]



def test_train_sizes_make_low_data_tasks(tmp_path):
    path = edited(tmp_path, lambda c: c["tasks"]["polarity"].update(train_sizes=[10, 30]))
    tasks = Experiment(load_config(path)).tasks()
    assert {"polarity", "polarity-n10", "polarity-n30"} <= set(tasks)
    assert tasks["polarity-n30"]["subset_of"] == "polarity"
    assert tasks["polarity-n30"]["n_train"] == 30

    def clash(config):
        config["tasks"]["polarity"]["train_sizes"] = [10]
        config["tasks"]["polarity-n10"] = dict(config["tasks"]["polarity"])

    with pytest.raises(ConfigError, match=r"tasks\.polarity\.train_sizes: 10"):
        load_config(edited(tmp_path, clash))


def test_multitask_names_a_corpus_and_vectors_and_is_an_init(tmp_path):
    def add(config, corpus="lee"):
        config["finetune"]["multitask"] = {"aux": {"corpus": corpus, "vectors": "lee_floret"}}

    experiment = Experiment(load_config(edited(tmp_path, add)))
    assert "aux (multi-task)" in [i.label for i in experiment.inits()]
    with pytest.raises(ConfigError, match=r"finetune\.multitask\.aux\.corpus: no corpus"):
        load_config(edited(tmp_path, lambda c: add(c, corpus="nope")))


def test_the_spacy_cnn_reference_applies_to_ner_and_ud_with_the_baselines_vectors(tmp_path):
    def change(config):
        config["finetune"]["references"] = ["bow", "spacy_cnn"]
        config["finetune"]["input_vectors"] = "lee_floret"

    config = load_config(edited(tmp_path, change), check_files=False)
    experiment = Experiment(config)
    by_type = {}
    for task, spec in experiment.tasks().items():
        runs = {init.run for init in experiment.inits_for(task)}
        by_type.setdefault(spec["type"], set()).update(runs & {"bow", "spacy_cnn"})
    assert by_type["textcat"] == {"bow"} and by_type["ner"] == {"spacy_cnn"}
    task = next(t for t, s in experiment.tasks().items() if s["type"] == "ner")
    job = experiment.finetune_job(task, "spacy_cnn", 0, 0, 0)
    assert job.encoder.width == 96 and job.encoder.include_static_vectors
    assert experiment.input_vectors("spacy_cnn") == "lee_floret"
    assert experiment.input_vectors("bow") is None


def test_the_spacy_cnn_reference_needs_the_baselines_vectors(tmp_path):
    path = edited(tmp_path, lambda c: c["finetune"].update(references=["spacy_cnn"]))
    with pytest.raises(ConfigError, match="spacy_cnn reference reads static vectors"):
        load_config(path, check_files=False)


def test_finetune_checkpoints_pick_the_inits_and_must_be_checkpoints(tmp_path):
    path = edited(tmp_path, lambda c: c["pretrain"]["lmao"].update(finetune_checkpoints=[10000]))
    experiment = Experiment(load_config(path, check_files=False))
    assert [i.words for i in experiment.inits() if i.run == "lmao"] == [10000]
    assert experiment.checkpoints("lmao") == [5000, 10000]  # both still pre-trained
    path = edited(tmp_path, lambda c: c["pretrain"]["lmao"].update(finetune_checkpoints=[7000]))
    with pytest.raises(ConfigError, match=r"pretrain\.lmao\.finetune_checkpoints: \[7000\]"):
        load_config(path, check_files=False)


@pytest.mark.parametrize("name", ["demo.yaml", "test.yaml", "config.yaml", "cluster.yaml"])
def test_defaults_come_from_the_schema_as_snakemake_fills_them(name):
    """One source of defaults: the lmao commands see the settings the workflow sees."""
    import copy

    from snakemake.utils import validate

    ours = yaml.safe_load((REPO / "config" / name).read_text())
    snakemakes = copy.deepcopy(ours)
    validate_config(ours)
    validate(snakemakes, str(REPO / "lmao" / "schemas" / "config.schema.yaml"))
    assert ours == snakemakes
    assert "patience" in ours["finetune"]  # a default the schema names


def test_a_labels_map_with_mixed_keys_is_canonical_json():
    """YAML's `{2: pos, unknown: neg, false: no}` has int, str and bool keys: a job's params
    still sort, with each key as the JSON text the label readers match."""
    from lmao.jobs import canonical

    params = canonical({"labels": {2: "pos", "unknown": "neg", False: "no"}, "b": [{3: "x"}]})
    assert params == {"b": [{"3": "x"}], "labels": {"2": "pos", "false": "no", "unknown": "neg"}}
    assert list(params["labels"]) == ["2", "false", "unknown"]
