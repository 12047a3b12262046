# lmao-pipeline: LMAO pre-training of spaCy CNN encoders and what it buys downstream.
# Read top to bottom: corpora → vectors → pretrain → tasks → finetune → report (→ decode).
# Default config: config/config.yaml (the study); the demo: --configfile config/demo.yaml.

from snakemake.utils import min_version

from lmao.config import check_sources, validate_config

min_version("9.0")


# A config given with --configfile replaces the study's config instead of being merged into it.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


# The same checks as `lmao check-config`, before any job runs, with errors that name the
# key path (and every source file the config reads must exist); validate_config also fills
# in the schema's defaults (with Snakemake's validate), as it does for the lmao commands.
validate_config(config)
check_sources(config)


report: "report/workflow.rst"


# Quick bookkeeping jobs run on the submitting machine, not as cluster jobs.
localrules:
    all,
    data,
    download,
    report,
    decode_table,
    halving,


# Names are safe slugs (the schema's `$defs/slug`); a task's low-data variants add `-n<N>`.
wildcard_constraints:
    corpus=r"[A-Za-z0-9][A-Za-z0-9_-]*",
    table=r"[A-Za-z0-9][A-Za-z0-9_-]*",
    run=r"[A-Za-z0-9][A-Za-z0-9_-]*",
    task=r"[A-Za-z0-9][A-Za-z0-9_-]*",
    words=r"\d+",
    sample=r"\d+",
    seed=r"-?\d+",
    epoch=r"\d+",
    parser=r"[A-Za-z0-9][A-Za-z0-9_-]*",
    download=r"[A-Za-z0-9][A-Za-z0-9_-]*",


include: "rules/common.smk"
include: "rules/corpora.smk"
include: "rules/vectors.smk"
include: "rules/parsers.smk"
include: "rules/pretrain.smk"
include: "rules/tasks.smk"
include: "rules/finetune.smk"
include: "rules/report.smk"
include: "rules/decode.smk"


rule all:
    input:
        report_outputs(),
        decode_outputs(),
    default_target: True


# `snakemake data`: every corpus store, vector table and task split, nothing trained.
rule data:
    input:
        data_outputs(),


# Package code: Snakemake reruns a job when its script changes, not when an `lmao` module
# it imports does; warn about such outputs by name instead (docs/architecture.md, "Reruns").
warn_about_package_code_changes()


onsuccess:
    record_package_code()


onerror:
    record_package_code()
