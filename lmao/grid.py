"""The grid a valid config describes: its inits (no pre-training, checkpoints, multi-task
configurations, reference models), its tasks, their primary metrics, and the exact slice of
the config each job's output depends on. The rules ask these questions; so do the CLI,
adopt and the report. No spaCy: the DAG builds without loading a model.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .config import NO_PRETRAINING, ConfigError, check_references
from .halving import HalvingPlan
from .jobs import (
    CorpusJob,
    DecodeJob,
    DownloadJob,
    FinetuneJob,
    PretrainJob,
    TaskJob,
    VectorsJob,
)
from .search import n_samples, sample_hyperparameters
from .settings import EncoderSettings, PretrainSettings

# The score that picks a run's best epoch and compares inits, per task type.
PRIMARY_METRIC = {"textcat": "accuracy", "ner": "ents_f", "ud": "las"}
# Reference models (`finetune.references`): the task types each applies to, and its label.
REFERENCES = {
    "bow": (("textcat",), "bag-of-words (reference)"),
    "spacy_cnn": (("ner", "ud"), "spaCy CNN + vectors (reference)"),
}

# The `spacy_cnn` reference: the tok2vec `spacy init config` writes for a CPU pipeline
# (width 96, depth 4, window 1, 3 maxout pieces, these hash rows), reading the same static
# vectors as the inits (`finetune.input_vectors`), and no pre-training.
SPACY_CNN = EncoderSettings(width=96, depth=4, window_size=1, maxout_pieces=3,
                            rows=[5000, 1000, 2500, 2500], include_static_vectors=True)

@dataclass(frozen=True)
class Init:
    """Where a fine-tuning run's encoder starts: a checkpoint, or nothing (run 'none')."""

    run: str
    words: int

    @property
    def label(self) -> str:
        if self.run == NO_PRETRAINING:
            return "no pre-training"
        if self.run in REFERENCES:
            return REFERENCES[self.run][1]
        if self.words == 0:  # no checkpoint: a multi-task configuration
            return f"{self.run} (multi-task)"
        return f"{self.run} {human(self.words)}"

def human(words: int) -> str:
    """12000000 -> '12M' (column labels of tables and plots)."""
    for unit, size in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if words >= size and words % (size // 1000 or 1) == 0:
            value = words / size
            return f"{value:g}{unit}"
    return str(words)

def expand_train_sizes(tasks: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    expanded: dict[str, dict[str, Any]] = {}
    for name, spec in tasks.items():
        expanded[name] = spec
        for n in spec.get("train_sizes", []):
            expanded[f"{name}-n{n}"] = {**spec, "subset_of": name, "n_train": n}
    return expanded

class Experiment:
    """Typed answers about a validated config."""

    def __init__(self, config: dict[str, Any]):
        check_references(config)
        self.config = config

    @property
    def name(self) -> str:
        return self.config["name"]

    def multitask(self) -> dict[str, dict[str, Any]]:
        """`finetune.multitask`: configurations trained from scratch with the LMAO loss as an
        auxiliary objective; each is an init of its own (run name, words 0)."""
        return self.config["finetune"].get("multitask") or {}

    def encoder(self, run: str = NO_PRETRAINING) -> EncoderSettings:
        if run == "spacy_cnn":
            return SPACY_CNN
        base = dict(self.config.get("encoder") or {})
        if run in self.config["pretrain"]:
            base.update(self.config["pretrain"][run].get("encoder") or {})
        return EncoderSettings.from_dict(base)

    def pretrain_settings(self, run: str) -> PretrainSettings:
        settings = dict(self.config["pretrain"][run].get("settings") or {})
        return PretrainSettings.from_dict({**settings, "encoder": self.encoder(run).to_dict()})

    def checkpoints(self, run: str) -> list[int]:
        return sorted(set(self.config["pretrain"][run]["checkpoints"]))

    def finetune_checkpoints(self, run: str) -> list[int]:
        """The checkpoints tasks start from (`finetune_checkpoints`; default: every one)."""
        spec = self.config["pretrain"][run]
        return sorted(set(spec.get("finetune_checkpoints", spec["checkpoints"])))

    def previous_checkpoint(self, run: str, words: int) -> int | None:
        """The run's checkpoint before `words` (None for the first); `words` must be one."""
        checkpoints = self.checkpoints(run)
        if words not in checkpoints:
            raise ConfigError(f"pretrain.{run}.checkpoints: {words} is not one of {checkpoints}")
        index = checkpoints.index(words)
        return checkpoints[index - 1] if index else None

    def inits(self) -> list[Init]:
        """No pre-training, every checkpoint, every multi-task init, every reference."""
        inits = [Init(NO_PRETRAINING, 0)]
        for run in self.config["pretrain"]:
            inits.extend(Init(run, words) for words in self.finetune_checkpoints(run))
        inits.extend(Init(run, 0) for run in self.multitask())
        inits.extend(Init(name, 0) for name in self.references())
        return inits

    def references(self) -> list[str]:
        return list(self.config["finetune"].get("references") or [])

    def inits_for(self, task: str) -> list[Init]:
        """The inits a task trains from: a reference only where it applies to the task type."""
        task_type = self.task_type(task)
        return [init for init in self.inits()
                if init.run not in REFERENCES or task_type in REFERENCES[init.run][0]]

    def input_vectors(self, run: str) -> str | None:
        """The vector table the encoder reads as input, if it reads one."""
        if not self.encoder(run).include_static_vectors or run == "bow":
            return None
        if run not in self.config["pretrain"]:  # none, multi-task from scratch, spacy_cnn
            table = self.config["finetune"].get("input_vectors")
            if table is None:
                raise ConfigError("finetune.input_vectors: the encoder reads static vectors, so "
                                  "the no-pre-training baseline needs a vector table")
            return table
        spec = self.config["pretrain"][run]
        return spec.get("input_vectors", spec["vectors"])

    def decode_corpus(self) -> str | None:
        """The held-out corpus checkpoints are decoded on (None: no decoding asked for)."""
        return (self.config.get("decode") or {}).get("corpus")

    def n_samples(self) -> int:
        return n_samples(self.config["finetune"])

    def halving(self) -> HalvingPlan | None:
        """`finetune.search.halving`'s plan (None: every sample trains to the cap)."""
        return HalvingPlan.of(self.config["finetune"])

    def hyperparameters(self, sample: int) -> dict[str, Any]:
        return sample_hyperparameters(self.config["finetune"], sample)

    def tasks(self) -> dict[str, dict[str, Any]]:
        """Every task the grid trains on: the configured ones and, for each size N in a
        task's `train_sizes`, `{task}-n{N}`: the same task with N training examples."""
        return expand_train_sizes(self.config["tasks"])

    def trained_tasks(self) -> list[str]:
        """The tasks fine-tuned: all of `tasks()` but a full-size task whose config says
        `full_size: false` (it is still built: its subsets are cut from it)."""
        return [name for name, spec in self.tasks().items()
                if "subset_of" in spec or spec.get("full_size", True)]

    def task_type(self, task: str) -> str:
        return self.tasks()[task]["type"]

    def primary_metric(self, task: str) -> str:
        return PRIMARY_METRIC[self.task_type(task)]

    # -------------------------------------------------- what each job's output depends on
    # Each method returns the job (`lmao.jobs`) that holds the exact slice of the config one
    # output depends on. The rules pass `job.params()` as `params:` and the job's script
    # rebuilds the job from there alone, so Snakemake's params trigger reruns a job exactly when its
    # slice changes (and, through its outputs, everything downstream of it).

    def corpus_job(self, corpus: str) -> CorpusJob:
        return CorpusJob(self.config["corpora"][corpus])

    def vectors_job(self, table: str) -> VectorsJob:
        return VectorsJob(self.config["vectors"][table])

    def download_job(self, download: str) -> DownloadJob:
        return DownloadJob(self.config["downloads"][download])

    def parser_job(self, parser: str) -> FinetuneJob:
        """A tagger + parser trained on the parser's UD task, without pre-training, with
        the fine-tuning settings' fixed hyper-parameters."""
        spec = self.config["parsers"][parser]
        return FinetuneJob("ud", self.encoder(), self.hyperparameters(0), spec["seed"],
                           spec["epochs"])

    def pretrain_job(self, run: str, words: int) -> PretrainJob:
        """Settings (encoder included) and the checkpoints up to `words`: the job trains from
        the previous checkpoint's state to exactly `words`."""
        return PretrainJob(self.pretrain_settings(run),
                           tuple(n for n in self.checkpoints(run) if n <= words))

    def task_job(self, task: str) -> TaskJob:
        """What builds a task's data; its `train_sizes` and `full_size` only say what is
        fine-tuned, so changing them rebuilds nothing of this one."""
        spec = self.tasks()[task]
        return TaskJob({key: value for key, value in spec.items()
                        if key not in ("train_sizes", "full_size")})

    def finetune_job(self, task: str, run: str, words: int, sample: int,
                     seed: int) -> FinetuneJob:
        spec = self.tasks()[task]
        reference = run in REFERENCES
        textcat = run if reference else spec.get("model", "reduce")
        return FinetuneJob(
            task_type=spec["type"],
            encoder=None if run == "bow" else self.encoder(run),
            hyperparameters=self.hyperparameters(sample),
            seed=seed,
            epochs=self.config["finetune"]["epochs"],
            patience=self.config["finetune"]["patience"],
            textcat=textcat if spec["type"] == "textcat" else None,
            multitask=self.multitask().get(run),
            labels={"task": task, "task_type": spec["type"],
                    "base_task": spec.get("subset_of", task), "pretrain_run": run,
                    "words": words, "sample": sample, "seed": seed},
        )

    def finetune_stage_job(self, task: str, run: str, words: int, sample: int, seed: int,
                           epoch: int) -> FinetuneJob:
        """The run of `finetune_job` up to a halving decision after `epoch`, then paused."""
        plan = self.halving()
        if plan is None:
            raise ConfigError("finetune.search.halving: the config has no halving, so no "
                              "stages to pause at")
        if epoch not in plan.epochs:
            raise ConfigError(f"finetune.search.halving: no decision after epoch {epoch} "
                              f"(the decisions are after epochs {list(plan.epochs)})")
        return replace(self.finetune_job(task, run, words, sample, seed), pause_after=epoch)

    def decode_job(self, run: str) -> DecodeJob:
        return DecodeJob(self.pretrain_settings(run), self.config["decode"])
