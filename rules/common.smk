# Helpers shared by every .smk file (paths, inputs and params). All logic about the
# experiment itself lives in lmao.config and lmao.grid; this file only turns it into file names.
#
# How reruns are decided (docs/architecture.md, "Reruns"): every job's `params:` is the
# exact slice of the config its output depends on (a job of lmao.jobs, built by
# lmao.grid), and every file it reads is an input, so Snakemake's default triggers (mtime, params, input, code,
# software-env) rerun exactly the jobs a config or data edit affects, and everything
# downstream of them. Source data files are the one exception to mtime: they are ancient()
# inputs whose SHA-256 is in the params of the job that reads them (`source_digests`), so
# new timestamps on the same bytes (a copy, a fresh checkout of the data) rerun nothing.
# After `dvc pull`/`dvc checkout`, `lmao restore` puts the timestamps of results and
# Snakemake's records back in order.

import sys
from pathlib import Path

from lmao.config import download_folder, local_sources, source_paths
from lmao.grid import Experiment
from lmao.halving import Decision
from lmao.layout import REPORT_FILES, Layout, download_dir, resume_path
from lmao.digests import SourceDigests
from lmao.provenance import (
    code_changes,
    describe_code_changes,
    export_package_path,
    finished_jobs,
    read_code_record,
    record_code,
    workflow_code,
)

export_package_path(workflow.basedir)

EXPERIMENT = Experiment(config)
HALVING = EXPERIMENT.halving()  # None: no successive halving (lmao.halving)
LAYOUT = Layout.of(EXPERIMENT.name)  # every path below comes from lmao.layout


SOURCE_DIGESTS = SourceDigests()


def source_inputs(spec, where):
    """The files a config entry reads: its local files and folders (checked to exist; a
    missing one names its config key; ancient(), as `source_digests` tracks their content)
    and the `download` folders of downloads/ paths."""
    inputs = {f"source{i}": ancient(path)
              for i, path in enumerate(local_sources(spec, where).values())}
    folders = sorted({download_folder(p) for p in source_paths(spec, where).values()} - {None})
    inputs.update({f"download{i}": folder for i, folder in enumerate(folders)})
    return inputs


def source_digests(spec, where):
    """{config key: SHA-256} of the local files a config entry reads: a job's params, so
    an edit of the bytes reruns it and a copy or touch of the same bytes does not."""
    return SOURCE_DIGESTS.of(local_sources(spec, where))


def corpus_inputs(wildcards):
    corpus = wildcards.corpus
    return source_inputs(config["corpora"][corpus], f"corpora.{corpus}")


def corpus_params(wildcards):
    return EXPERIMENT.corpus_job(wildcards.corpus).params()


def corpus_source_digests(wildcards):
    corpus = wildcards.corpus
    return source_digests(config["corpora"][corpus], f"corpora.{corpus}")


def vector_source_inputs(wildcards):
    spec = config["vectors"][wildcards.table]
    inputs = source_inputs(spec, f"vectors.{wildcards.table}")
    if "train" in spec:
        inputs["store"] = LAYOUT.store(spec["train"]["corpus"])
    return inputs


def vectors_params(wildcards):
    return EXPERIMENT.vectors_job(wildcards.table).params()


def vectors_source_digests(wildcards):
    table = wildcards.table
    return source_digests(config["vectors"][table], f"vectors.{table}")


def vectors_threads(wildcards):
    """floret's threads for a trained table (the schema's default is filled in); 1 for an
    imported one."""
    spec = config["vectors"][wildcards.table]
    return spec["train"]["threads"] if "train" in spec else 1


def parser_task(wildcards):
    return LAYOUT.task(config['parsers'][wildcards.parser]['task'])


def parser_params(wildcards):
    return EXPERIMENT.parser_job(wildcards.parser).params()


def pretrain_inputs(wildcards):
    """Corpus, target (and input) vectors, and the state saved at the previous checkpoint."""
    spec = config["pretrain"][wildcards.run]
    inputs = {"store": LAYOUT.store(spec["corpus"]), "vectors": LAYOUT.vectors(spec["vectors"])}
    table = EXPERIMENT.input_vectors(wildcards.run)
    if table is not None:
        inputs["input_vectors"] = LAYOUT.vectors(table)
    if "parser" in spec:
        inputs["parse"] = LAYOUT.parse(spec["corpus"], spec["parser"])
    previous = EXPERIMENT.previous_checkpoint(wildcards.run, int(wildcards.words))
    if previous is not None:
        inputs["previous_state"] = LAYOUT.state(wildcards.run, previous)
    return inputs


def pretrain_params(wildcards):
    return EXPERIMENT.pretrain_job(wildcards.run, int(wildcards.words)).params()


def task_inputs(wildcards):
    """A low-data task is cut from its parent task's splits; a configured task reads its
    source files."""
    spec = EXPERIMENT.tasks()[wildcards.task]
    if "subset_of" in spec:
        return {"parent": LAYOUT.task(spec["subset_of"])}
    return source_inputs(spec, f"tasks.{wildcards.task}")


def task_params(wildcards):
    return EXPERIMENT.task_job(wildcards.task).params()


def task_source_digests(wildcards):
    spec = EXPERIMENT.tasks()[wildcards.task]
    if "subset_of" in spec:  # reads its parent task's output, not source files
        return {}
    return source_digests(spec, f"tasks.{wildcards.task}")


def finetune_inputs(wildcards):
    """The task data, plus the checkpoint and input vectors this init needs; with halving,
    the run's last stage (the final run continues from the state it left)."""
    inputs = {"task": LAYOUT.task(wildcards.task)}
    multitask = EXPERIMENT.multitask().get(wildcards.run)
    if multitask is not None:  # unlabelled text and target vectors of the auxiliary loss
        inputs["aux_store"] = LAYOUT.store(multitask["corpus"])
        inputs["aux_vectors"] = LAYOUT.vectors(multitask["vectors"])
    elif wildcards.run in config["pretrain"]:
        inputs["checkpoint"] = LAYOUT.checkpoint(wildcards.run, wildcards.words)
    table = EXPERIMENT.input_vectors(wildcards.run)
    if table is not None:
        inputs["vectors"] = LAYOUT.vectors(table)
    if HALVING is not None and "epoch" not in wildcards.keys():
        inputs["previous_stage"] = _stage_log(wildcards, HALVING.epochs[-1])
    return inputs


def _stage_log(w, epoch):
    return LAYOUT.finetune_stage(w.task, w.run, w.words, w.sample, w.seed, epoch)


def finetune_params(wildcards):
    w = wildcards
    job = EXPERIMENT.finetune_job(w.task, w.run, int(w.words), int(w.sample), int(w.seed))
    return job.params()


def finetune_stage_inputs(wildcards):
    """A stage's inputs are the run's; from the second decision on, also the stage before
    (whose state it continues)."""
    inputs = finetune_inputs(wildcards)
    previous = HALVING.previous(int(wildcards.epoch))
    if previous is not None:
        inputs["previous_stage"] = _stage_log(wildcards, previous)
    return inputs


def finetune_stage_params(wildcards):
    w = wildcards
    job = EXPERIMENT.finetune_stage_job(
        w.task, w.run, int(w.words), int(w.sample), int(w.seed), int(w.epoch)
    )
    return job.params()


def finetune_state_path(wildcards):
    """Where the run keeps its state: beside its final log, where `finetune` looks."""
    w = wildcards
    return str(resume_path(LAYOUT.finetune_scores(w.task, w.run, w.words, w.sample, w.seed)))


def samples_in_race(task, epoch=None):
    """The samples that train up to the decision after `epoch` (None: up to the cap): all
    of them before the first decision, then those each decision kept. Asking for a decision
    not made yet tells Snakemake to make it first (the `halving` checkpoint)."""
    samples = list(range(EXPERIMENT.n_samples()))
    if HALVING is None:
        return samples
    for decided in HALVING.epochs:
        if decided == epoch:
            break
        samples = decision(task, decided).kept
    return samples


def decision(task, epoch):
    return Decision.read(checkpoints.halving.get(task=task, epoch=str(epoch)).output.decision)


def _runs(task, samples):
    """(init, sample, seed) of every run of `task` for these samples."""
    return [
        (init, sample, seed)
        for init in EXPERIMENT.inits_for(task)
        for sample in samples
        for seed in config["finetune"]["seeds"]
    ]


def halving_stage_logs(wildcards):
    """The stage logs a decision ranks: every run of the task still in the race."""
    epoch = int(wildcards.epoch)
    return [
        LAYOUT.finetune_stage(wildcards.task, init.run, init.words, sample, seed, epoch)
        for init, sample, seed in _runs(wildcards.task, samples_in_race(wildcards.task, epoch))
    ]


def halving_params(wildcards):
    """What a decision depends on besides its stage logs."""
    return {
        "epochs": list(HALVING.epochs),
        "keep": HALVING.keep,
        "metric": EXPERIMENT.primary_metric(wildcards.task),
        "name": EXPERIMENT.name,
    }


def finetune_logs(wildcards=None):
    """Every fine-tuning log the report reads: task × init (references included, where
    they apply) × sample × seed (each its own job, so a cluster runs them side by side);
    with halving, the samples the last decision kept."""
    return [
        LAYOUT.finetune_scores(task, init.run, init.words, sample, seed)
        for task in EXPERIMENT.trained_tasks()
        for init, sample, seed in _runs(task, samples_in_race(task))
    ]


def halving_decisions(wildcards=None):
    """Every decision of a halving search (none without one)."""
    if HALVING is None:
        return []
    return [
        LAYOUT.halving_decision(task, epoch)
        for task in EXPERIMENT.trained_tasks()
        for epoch in HALVING.epochs
    ]


def data_outputs():
    return (
        [LAYOUT.store(corpus) for corpus in config["corpora"]]
        + [LAYOUT.vectors(table) for table in config["vectors"]]
        + [LAYOUT.task(task) for task in EXPERIMENT.tasks()]
    )


def final_checkpoints():
    """Each pre-training run's last checkpoint; its folder's log.jsonl covers the whole run."""
    return {
        run: LAYOUT.checkpoint(run, EXPERIMENT.checkpoints(run)[-1]) for run in config["pretrain"]
    }


def report_outputs():
    return [LAYOUT.report_file(name) for name in REPORT_FILES]


def decode_inputs(wildcards):
    """A checkpoint's state, its run's target (and input) vectors, the held-out store, and
    for the head objectives that store's parse by the run's parser."""
    spec = config["pretrain"][wildcards.run]
    corpus = EXPERIMENT.decode_corpus()
    inputs = {
        "state": LAYOUT.state(wildcards.run, wildcards.words),
        "store": LAYOUT.store(corpus),
        "vectors": LAYOUT.vectors(spec["vectors"]),
    }
    table = EXPERIMENT.input_vectors(wildcards.run)
    if table is not None:
        inputs["input_vectors"] = LAYOUT.vectors(table)
    if "parser" in spec:
        inputs["parse"] = LAYOUT.parse(corpus, spec["parser"])
    return inputs


def decode_params(wildcards):
    return EXPERIMENT.decode_job(wildcards.run).params()


def decode_evaluations():
    return [
        LAYOUT.decode(run, words)
        for run in config["pretrain"]
        for words in EXPERIMENT.checkpoints(run)
    ]


def decode_outputs():
    """The decoding table, when the config asks for one."""
    if EXPERIMENT.decode_corpus() is None:
        return []
    return [LAYOUT.decode_table()]


def download_params(wildcards):
    return EXPERIMENT.download_job(wildcards.download).params()


def warn_about_package_code_changes():
    """Name the outputs that other `lmao` code made (Snakemake sees only script files)."""
    changes = code_changes(read_code_record(LAYOUT.code_record()),
                           workflow_code(workflow.rules))
    if changes:
        print(describe_code_changes(changes), file=sys.stderr)


def record_package_code():
    """Record the code that made each output this invocation finished."""
    jobs = finished_jobs(workflow.dag)
    if jobs:
        record_code(LAYOUT.code_record(), jobs, workflow_code(workflow.rules))
