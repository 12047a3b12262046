"""A config file: read, checked and completed, before anything runs.

The schema (`schemas/config.schema.yaml`) says what each key takes; this module adds what a
schema cannot say (names that must refer to each other, numbers that must agree, source
paths that must be readable files) and fills in the schema's defaults. Snakemake's start-up
and `lmao check-config` run exactly these checks. It imports no spaCy: checking a config,
or building the workflow's DAG, loads no model.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import yaml

from .fileio import special_file
from .layout import DOWNLOADS
from .settings import PretrainSettings

SCHEMA_PATH = Path(__file__).parent / "schemas" / "config.schema.yaml"

NO_PRETRAINING = "none"

class ConfigError(ValueError):
    """A configuration that is well-formed but inconsistent; the message names the key."""

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

    def set_defaults(validator, properties, instance, subschema):
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
        if name in reference_models():
            raise ConfigError(f"pretrain.{name}: the name {name!r} is a reference model's")
        extra = set(run.get("finetune_checkpoints", [])) - set(run["checkpoints"])
        if extra:
            raise ConfigError(f"pretrain.{name}.finetune_checkpoints: {sorted(extra)} not among "
                              f"the run's checkpoints {sorted(set(run['checkpoints']))}")
    for name, spec in (config["finetune"].get("multitask") or {}).items():
        if name == NO_PRETRAINING or name in config["pretrain"] or name in reference_models():
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
    _check_halving(finetune)
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

def _check_halving(finetune: dict[str, Any]) -> None:
    """Halving's decision epochs: increasing, each below the epoch cap, over a search of at
    least two samples (with one there is nothing to rank)."""
    search = finetune.get("search") or {}
    halving = search.get("halving")
    if halving is None:
        return
    where = "finetune.search.halving"
    if search["samples"] < 2:
        raise ConfigError(f"{where}: the search has {search['samples']} sample; halving ranks "
                          "samples, so it needs at least 2")
    decisions = halving["epochs"]
    if any(b <= a for a, b in zip(decisions, decisions[1:], strict=False)):
        raise ConfigError(f"{where}.epochs: {decisions} is not increasing")
    if decisions[-1] >= finetune["epochs"]:
        raise ConfigError(f"{where}.epochs: {decisions[-1]} is not below finetune.epochs "
                          f"({finetune['epochs']}): the samples kept would have no epoch left")


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


def reference_models() -> list[str]:
    """The reference models a config may name (`finetune.references`): the schema's list."""
    return list(load_schema()["properties"]["finetune"]["properties"]["references"]["items"]
                ["enum"])
