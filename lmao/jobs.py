"""One typed job per rule: what a job is asked to do, and nothing else.

`lmao.grid` builds a job from the config; the rule passes `job.params()` to Snakemake (so a
job reruns exactly when its params change) and its script rebuilds the job with
`from_params` before calling the one function that does the work. The `lmao` commands
build the same jobs from the same config, so a step run by hand is the workflow's step.
Defaults are filled in before `params()`: they are part of a job's identity.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .settings import DEFAULT_HYPERPARAMETERS, EncoderSettings, PretrainSettings


def canonical(value: Any) -> Any:
    """`value` as plain JSON data with sorted keys. A rule's params are compared by their
    repr, so this makes them equal exactly when the settings are, whatever the key order.
    Keys become the JSON text of what they were (YAML's `{1: pos, true: x}` mapping keys
    are not strings), so a mapping of mixed keys sorts too."""
    return json.loads(json.dumps(_string_keys(value), sort_keys=True))


def _string_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key if isinstance(key, str) else json.dumps(key): _string_keys(item)
                for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_string_keys(item) for item in value]
    return value


@dataclass(frozen=True)
class SpecJob:
    """A job whose settings are its config entry as written (defaults filled in):
    tokenizing a corpus, making a vectors table, a download, building a task."""

    spec: dict[str, Any]

    def params(self) -> dict[str, Any]:
        return canonical(self.spec)

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> SpecJob:
        return cls(dict(params))


class CorpusJob(SpecJob):
    """Rule `tokenize_corpus`: `corpora.<name>`."""


class VectorsJob(SpecJob):
    """Rule `vectors`: `vectors.<name>`."""


class DownloadJob(SpecJob):
    """Rule `download`: `downloads.<name>`."""


class TaskJob(SpecJob):
    """Rule `build_task`: a task's entry without `train_sizes` and `full_size`, which only
    say what is fine-tuned (a low-data variant adds `subset_of` and `n_train`)."""


@dataclass(frozen=True)
class PretrainJob:
    """Rule `pretrain`: train from the previous checkpoint's state to exactly the last of
    `checkpoints` (all of the run's checkpoints up to this one)."""

    settings: PretrainSettings
    checkpoints: tuple[int, ...]

    def params(self) -> dict[str, Any]:
        return canonical({"settings": asdict(self.settings),
                          "checkpoints": list(self.checkpoints)})

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> PretrainJob:
        return cls(PretrainSettings.from_dict(params["settings"]), tuple(params["checkpoints"]))


@dataclass(frozen=True)
class DecodeJob:
    """Rule `decode_checkpoint`: a run's settings and the config's `decode` entry."""

    settings: PretrainSettings
    decode: dict[str, Any]

    def params(self) -> dict[str, Any]:
        return canonical({"settings": asdict(self.settings), "decode": self.decode})

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> DecodeJob:
        return cls(PretrainSettings.from_dict(params["settings"]), dict(params["decode"]))


@dataclass(frozen=True)
class FinetuneJob:
    """Rule `finetune` (and `train_parser`): one run of spaCy's training on a task.

    `hyperparameters` are complete (`DEFAULT_HYPERPARAMETERS` filled in where the config
    says nothing); `labels` are copied into every line of the run's log, so each log
    describes itself (task, init, words, sample, seed)."""

    task_type: str
    encoder: EncoderSettings | None  # None: spaCy's bag-of-words classifier, no encoder
    hyperparameters: dict[str, Any]
    seed: int
    epochs: int
    patience: int = 0
    textcat: str | None = None  # text classification only: reduce, ensemble or bow
    multitask: dict[str, Any] | None = None  # a `finetune.multitask` entry
    labels: dict[str, Any] = field(default_factory=dict)
    pause_after: int | None = None  # a halving stage: train up to this epoch and pause

    def __post_init__(self) -> None:
        unknown = set(self.hyperparameters) - set(DEFAULT_HYPERPARAMETERS)
        if unknown:
            raise ValueError(f"unknown hyper-parameters {sorted(unknown)}; known: "
                             f"{sorted(DEFAULT_HYPERPARAMETERS)}")
        object.__setattr__(self, "hyperparameters",
                           {**DEFAULT_HYPERPARAMETERS, **self.hyperparameters})

    def params(self) -> dict[str, Any]:
        return canonical({
            "task_type": self.task_type, "textcat": self.textcat,
            "encoder": None if self.encoder is None else self.encoder.to_dict(),
            "hyperparameters": self.hyperparameters, "seed": self.seed, "epochs": self.epochs,
            "patience": self.patience, "multitask": self.multitask, "labels": self.labels,
            **({} if self.pause_after is None else {"pause_after": self.pause_after}),
        })

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> FinetuneJob:
        encoder = params["encoder"]
        return cls(params["task_type"], None if encoder is None else
                   EncoderSettings.from_dict(encoder), dict(params["hyperparameters"]),
                   params["seed"], params["epochs"], params["patience"], params["textcat"],
                   params["multitask"], dict(params["labels"]), params.get("pause_after"))


@dataclass(frozen=True)
class FinetuneInputs:
    """The files a fine-tuning run reads: the built task, and where its init needs them a
    checkpoint, the static input vectors and (multi-task) unlabelled text with targets."""

    task: Path
    checkpoint: Path | None = None
    vectors: Path | None = None
    aux_store: Path | None = None
    aux_vectors: Path | None = None

    @classmethod
    def of(cls, task: str | Path, **paths: str | Path | None) -> FinetuneInputs:
        return cls(Path(task), **{key: None if value is None else Path(value)
                                  for key, value in paths.items()})
