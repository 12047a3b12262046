"""One experiment's configuration: loading, validation, and the questions rules ask of it.

Snakemake validates the same schema at start-up; this module adds the checks a schema
cannot express (names that must refer to each other) and answers for the workflow which
runs, checkpoints and inits exist, so the rule files stay thin.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from .encoder import EncoderSettings
from .finetune import PRIMARY_METRIC
from .pretrain import PretrainSettings
from .search import n_samples, sample_hyperparameters
from .workflow import special_file

SCHEMA_PATH = Path(__file__).parent / "schemas" / "config.schema.yaml"
NO_PRETRAINING = "none"
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


class ConfigError(ValueError):
    """A configuration that is well-formed but inconsistent; the message names the key."""


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


def load_config(path: str | Path, check_files: bool = True) -> dict[str, Any]:
    """Read and validate a config file (schema, cross-references and, unless told not to,
    that its source files exist)."""
    try:
        with open(path, encoding="utf-8") as handle:
            config = yaml.safe_load(handle)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: not valid YAML ({getattr(err, 'problem', err)})") from None
    try:
        validate_config(config)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    if check_files:
        check_sources(config)
    return config


def validate_config(config: Any) -> None:
    """The schema, then the cross-references; a failure names the key path and what the
    schema allows there. Then the schema's defaults are filled in, in place, so `lmao`
    commands and the workflow see the same settings (one validation path, one source of
    defaults: the schema)."""
    import jsonschema

    schema = load_schema()
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(config))
    if errors:  # the most relevant, not yet inside a oneOf (describe_schema_error picks)
        error = max(errors, key=jsonschema.exceptions.relevance)
        raise ConfigError(describe_schema_error(error)) from None
    check_references(config)
    fill_defaults(config, schema)


@functools.cache
def load_schema() -> dict[str, Any]:
    """The config schema, read once (validation and the search-space checks share it)."""
    return yaml.safe_load(SCHEMA_PATH.read_text())


def fill_defaults(config: Any, schema: dict) -> None:
    """Set every `default` the schema names where the config leaves it out: the recipe of
    jsonschema's FAQ, which `snakemake.utils.validate(set_default=True)` also uses, so the
    filled config is the one Snakemake's validate would give (job scripts need no
    Snakemake for this)."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    check_properties = base.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, subschema):  # noqa: ANN001, ANN202
        if isinstance(instance, dict):
            for name, prop in properties.items():
                if "default" in prop:
                    instance.setdefault(name, prop["default"])
        yield from check_properties(validator, properties, instance, subschema)

    jsonschema.validators.extend(base, {"properties": set_defaults})(schema).validate(config)


def describe_schema_error(error: Any) -> str:
    """`at tasks.x.source.format: 'wnut' is not one of [...]`: for a `oneOf` (the kinds of
    task, source, vectors...), the error inside the branch the entry's `type`/`format`
    selects, or the values those keys allow."""
    while error.validator in ("oneOf", "anyOf"):
        by_branch: dict[int, list] = {}
        for sub in error.context:
            by_branch.setdefault(sub.relative_schema_path[0], []).append(sub)
        selected = [errors for errors in by_branch.values()
                    if not any(e.validator in ("const", "enum") and len(e.relative_path) == 1
                               and e.relative_path[0] in ("type", "format") for e in errors)]
        if len(selected) != 1:
            return f"at {_key_path(error.absolute_path)}: {_branches(error)}"
        error = min(selected[0], key=lambda e: (-len(e.absolute_path), e.validator != "required"))
    if isinstance(error.schema, dict) and error.schema.get("title") == "safe name":
        # `$defs/slug`: jsonschema's own message shows a regex, and for a key (propertyNames)
        # it names only the parent's path
        return (f"at {_key_path(error.absolute_path)}: the name {error.instance!r} is not a "
                f"safe name ({error.schema['description']})")
    return f"at {_key_path(error.absolute_path)}: {error.message[:300]}"


def _branches(error: Any) -> str:
    """What a oneOf's branches ask for: `type` or `format` values, or one of some keys."""
    values: dict[str, list[str]] = {}
    for branch in error.validator_value:
        props = branch.get("properties", {})
        for key in ("type", "format"):
            rule = props.get(key, {})
            found = [rule["const"]] if "const" in rule else rule.get("enum", [])
            values.setdefault(key, []).extend(str(v) for v in found)
    allowed = "; ".join(f"{key} one of {sorted(set(v))}" for key, v in values.items() if v)
    if allowed:
        return f"expected {allowed}"
    required = sorted({key for branch in error.validator_value
                       for key in branch.get("required", [])})
    if required:
        how_many = "exactly one" if error.validator == "oneOf" else "at least one"
        return f"expected {how_many} of the keys {required}"
    return error.message[:300]


def _key_path(path: Any) -> str:
    parts = [f"[{p}]" if isinstance(p, int) else f".{p}" for p in path]
    return "".join(parts).lstrip(".") or "(top level)"


def check_sources(config: dict[str, Any]) -> None:
    """Every local file or folder the config reads exists (downloads/ come later)."""
    for section in ("corpora", "vectors", "tasks"):
        for name, spec in config.get(section, {}).items():
            local_sources(spec, f"{section}.{name}")


def check_references(config: dict[str, Any]) -> None:
    corpora, vectors = config["corpora"], config["vectors"]
    for name, table in vectors.items():
        if "train" in table and table["train"]["corpus"] not in corpora:
            raise ConfigError(f"vectors.{name}.train.corpus: no corpus named "
                              f"{table['train']['corpus']!r} (have {sorted(corpora)})")
    for name, run in config["pretrain"].items():
        if name == NO_PRETRAINING:
            raise ConfigError(f"pretrain.{name}: the name {NO_PRETRAINING!r} is reserved")
        if run["corpus"] not in corpora:
            raise ConfigError(f"pretrain.{name}.corpus: no corpus named {run['corpus']!r}")
        for key in ("vectors", "input_vectors"):
            if key in run and run[key] not in vectors:
                raise ConfigError(f"pretrain.{name}.{key}: no vector table named {run[key]!r}")
        settings = PretrainSettings.from_dict({**run.get("settings", {}), "encoder": None})
        parsers = config.get("parsers", {})
        if "parser" in run and run["parser"] not in parsers:
            raise ConfigError(f"pretrain.{name}.parser: no parser named {run['parser']!r}")
        if settings.objective in ("head", "head_word") and "parser" not in run:
            raise ConfigError(f"pretrain.{name}: objective {settings.objective!r} needs a parser")
    decode = config.get("decode")
    if decode is not None:
        if decode["corpus"] not in corpora:
            raise ConfigError(f"decode.corpus: no corpus named {decode['corpus']!r}")
        for name, run in config["pretrain"].items():
            if run["corpus"] == decode["corpus"]:
                raise ConfigError(f"decode.corpus: {decode['corpus']!r} is the pre-training "
                                  f"text of pretrain.{name}; decoding needs held-out text")
    for name, run in config["pretrain"].items():
        if name in REFERENCES:
            raise ConfigError(f"pretrain.{name}: the name {name!r} is a reference model's")
        extra = set(run.get("finetune_checkpoints", [])) - set(run["checkpoints"])
        if extra:
            raise ConfigError(f"pretrain.{name}.finetune_checkpoints: {sorted(extra)} not among "
                              f"the run's checkpoints {sorted(set(run['checkpoints']))}")
    for name, spec in (config["finetune"].get("multitask") or {}).items():
        if name == NO_PRETRAINING or name in config["pretrain"] or name in REFERENCES:
            raise ConfigError(f"finetune.multitask.{name}: the name is taken (no pre-training "
                              "or a pre-training run)")
        if spec["corpus"] not in corpora:
            raise ConfigError(f"finetune.multitask.{name}.corpus: no corpus named "
                              f"{spec['corpus']!r}")
        if spec["vectors"] not in vectors:
            raise ConfigError(f"finetune.multitask.{name}.vectors: no vector table named "
                              f"{spec['vectors']!r}")
    for name, spec in config["tasks"].items():
        n_train = spec.get("split", {}).get("n_train") or spec.get("limits", {}).get("train")
        for n in spec.get("train_sizes", []):
            if f"{name}-n{n}" in config["tasks"]:
                raise ConfigError(f"tasks.{name}.train_sizes: {n} makes a task "
                                  f"{name}-n{n}, and a task of that name exists")
            if n_train is not None and n > n_train:
                raise ConfigError(f"tasks.{name}.train_sizes: {n} is more than the task's "
                                  f"{n_train} training examples")
    table = config["finetune"].get("input_vectors")
    if table is not None and table not in vectors:
        raise ConfigError(f"finetune.input_vectors: no vector table named {table!r} "
                          f"(have {sorted(vectors)})")
    if (config.get("encoder") or {}).get("include_static_vectors") and table is None:
        raise ConfigError("finetune.input_vectors: the encoder reads static vectors, so the "
                          "no-pre-training baseline needs a vector table here")
    if "spacy_cnn" in (config["finetune"].get("references") or []) and table is None:
        raise ConfigError("finetune.input_vectors: the spacy_cnn reference reads static "
                          "vectors; name the table here")
    for name, parser in config.get("parsers", {}).items():
        task = config["tasks"].get(parser["task"])
        if task is None or task["type"] != "ud":
            raise ConfigError(f"parsers.{name}.task: {parser['task']!r} is not a ud task")
    check_finetune_numbers(config["finetune"])


def check_finetune_numbers(finetune: dict[str, Any]) -> None:
    """What the schema cannot say about fine-tuning's numbers: `patience` and the frozen
    epochs against `epochs`, and every value a search can draw against the range the
    schema gives the same key under `hyperparameters` (one definition), so an absurd
    sample fails at start-up, not as a traceback hours into a job."""
    import jsonschema

    epochs, patience = finetune["epochs"], finetune.get("patience", 0)
    if patience > epochs:
        raise ConfigError(f"finetune.patience: {patience} is more than finetune.epochs "
                          f"({epochs}): every run would end before patience could stop it")
    frozen = (finetune.get("hyperparameters") or {}).get("freeze_encoder_epochs", 0)
    _check_frozen_epochs("finetune.hyperparameters.freeze_encoder_epochs", frozen, epochs)
    schema = load_schema()
    rules = schema["properties"]["finetune"]["properties"]["hyperparameters"]["properties"]
    for key, dimension in ((finetune.get("search") or {}).get("space") or {}).items():
        (kind, values), = dimension.items()
        where = f"finetune.search.space.{key}.{kind}"
        rule = {"$defs": schema["$defs"], **rules[key]}
        if kind != "choice" and _resolve(rule, schema).get("type") == "integer":
            raise ConfigError(f"{where}: draws fractions, but {key} is a whole number; "
                              f"list the values instead ({key}: {{choice: [...]}})")
        validator = jsonschema.Draft202012Validator(rule)
        for i, value in enumerate(values):
            error = jsonschema.exceptions.best_match(validator.iter_errors(value))
            if error is not None:
                raise ConfigError(f"{where}[{i}]: {error.message[:300]}")
            if key == "freeze_encoder_epochs":
                _check_frozen_epochs(f"{where}[{i}]", value, epochs)
        if kind != "choice" and not values[0] < values[1]:
            raise ConfigError(f"{where}: {values} is not [low, high] with low below high")


def _check_frozen_epochs(where: str, frozen: int, epochs: int) -> None:
    if frozen >= epochs:
        raise ConfigError(f"{where}: {frozen} is not less than finetune.epochs ({epochs}): "
                          "the encoder would stay frozen for the whole run, never trained")


def _resolve(rule: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A property's schema with its `$ref: "#/$defs/..."` followed (to read its type)."""
    while "$ref" in rule:
        rule = schema["$defs"][rule["$ref"].removeprefix("#/$defs/")]
    return rule


SOURCE_PATH_KEYS = ("path", "train", "dev", "test")
DOWNLOADS = "downloads"  # the `download` rule's folder, shared by every config


def source_paths(spec: Any, where: str) -> dict[str, str]:
    """Every file or folder a config entry reads, by its key path (`tasks.x.source.train`):
    string values under the keys `path`, `train`, `dev` and `test`, at any depth."""
    found: dict[str, str] = {}

    def walk(value: Any, key_path: str, key: str | None) -> None:
        if isinstance(value, dict):
            for name, item in value.items():
                walk(item, f"{key_path}.{name}", name)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{key_path}[{i}]", key)
        elif isinstance(value, str) and key in SOURCE_PATH_KEYS:
            found[key_path] = value

    walk(spec, where, None)
    return found


def download_folder(path: str) -> str | None:
    """`downloads/<name>` for a path the `download` rule makes (None for any other path)."""
    parts = Path(path).parts
    return str(Path(*parts[:2])) if len(parts) >= 2 and parts[0] == DOWNLOADS else None


def local_sources(spec: Any, where: str) -> dict[str, str]:
    """The paths of `source_paths` that exist before the workflow runs (not downloads/),
    checked: a missing one, or one that is not a regular file or folder (a FIFO or
    /dev/zero would hang every reader and the source digest), is a `ConfigError` naming
    its key. A stat, unlike an open, never blocks on a FIFO."""
    local = {key: path for key, path in source_paths(spec, where).items()
             if download_folder(path) is None}
    for key, path in local.items():
        try:
            status = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            raise ConfigError(f"{key}: no such file or folder: {path} "
                              f"(relative paths start from {Path.cwd()})") from None
        except OSError as err:
            raise ConfigError(f"{key}: cannot read {path}: {err.strerror}") from None
        kind = special_file(status)
        if kind is not None:
            raise ConfigError(f"{key}: {path} is not a regular file or folder ({kind})")
    return local


def canonical(value: Any) -> Any:
    """`value` as plain JSON data with sorted keys. A rule's params are compared by their
    repr, so this makes them equal exactly when the settings are, whatever the key order."""
    return json.loads(json.dumps(value, sort_keys=True))


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

    def auxiliary(self, run: str, store: str | Path, vectors: str | Path):  # noqa: ANN201
        """The auxiliary objective of a multi-task init (None for any other init)."""
        from .multitask import AuxiliarySettings

        spec = self.multitask().get(run)
        return None if spec is None else AuxiliarySettings.from_dict(spec, store, vectors)

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
    # Each method returns the exact slice of the config that determines one job's output, as
    # plain data (`canonical`). The rules pass it as `params:` and the job's script reads its
    # settings from there alone, so Snakemake's params trigger reruns a job exactly when its
    # slice changes (and, through its outputs, everything downstream of it).

    def corpus_job(self, corpus: str) -> dict[str, Any]:
        return canonical(self.config["corpora"][corpus])

    def vectors_job(self, table: str) -> dict[str, Any]:
        return canonical(self.config["vectors"][table])

    def parser_job(self, parser: str) -> dict[str, Any]:
        spec = self.config["parsers"][parser]
        return canonical({"encoder": self.encoder().to_dict(),
                          "hyperparameters": self.config["finetune"].get("hyperparameters", {}),
                          "epochs": spec["epochs"], "seed": spec["seed"]})

    def pretrain_job(self, run: str, words: int) -> dict[str, Any]:
        """Settings (encoder included) and the checkpoints up to `words`: the job trains from
        the previous checkpoint's state to exactly `words`."""
        return canonical({"settings": asdict(self.pretrain_settings(run)),
                          "checkpoints": [n for n in self.checkpoints(run) if n <= words]})

    def task_job(self, task: str) -> dict[str, Any]:
        """What builds a task's data; its `train_sizes` and `full_size` only say what is
        fine-tuned, so changing them rebuilds nothing of this one."""
        spec = self.tasks()[task]
        return canonical({key: value for key, value in spec.items()
                          if key not in ("train_sizes", "full_size")})

    def finetune_job(self, task: str, run: str, words: int, sample: int,
                     seed: int) -> dict[str, Any]:
        spec = self.tasks()[task]
        reference = run in REFERENCES
        textcat = run if reference else spec.get("model", "reduce")
        return canonical({
            "task_type": spec["type"],
            "textcat": textcat if spec["type"] == "textcat" else None,
            "encoder": None if run == "bow" else self.encoder(run).to_dict(),
            "hyperparameters": self.hyperparameters(sample),
            "epochs": self.config["finetune"]["epochs"],
            "patience": self.config["finetune"]["patience"],
            "multitask": self.multitask().get(run),
            "labels": {"task": task, "task_type": spec["type"],
                       "base_task": spec.get("subset_of", task), "pretrain_run": run,
                       "words": words, "sample": sample, "seed": seed},
        })

    def decode_job(self, run: str) -> dict[str, Any]:
        return canonical({"settings": asdict(self.pretrain_settings(run)),
                          "decode": self.config["decode"]})
