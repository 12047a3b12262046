# Helpers shared by every .smk file (paths and input functions). All logic about the
# experiment itself lives in lmao.experiment; this file only turns it into file names.

import os

from lmao.experiment import NO_PRETRAINING, Experiment
from lmao.workflow import export_package_path

export_package_path(workflow.basedir)

EXPERIMENT = Experiment(config)
RESULTS = f"results/{EXPERIMENT.name}"
LOGS = f"logs/{EXPERIMENT.name}"


# The inputs built here are all products of the workflow and are marked ancient(), so a
# timestamp alone never triggers a rerun, because `dvc checkout` restores results with new
# timestamps in no particular order. Changes still propagate through Snakemake's code,
# params and input-set triggers, and through any upstream job that reruns.


def ancient_all(inputs):
    return {name: ancient(path) for name, path in inputs.items()}


DOWNLOADS = "downloads"  # shared by every config: a data set is fetched once


def downloads_in(spec):
    """The `download` outputs a config entry reads: every path under downloads/<name>/."""
    found = set()

    def walk(value):
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str) and value.startswith(f"{DOWNLOADS}/"):
            found.add(os.path.join(*value.split(os.sep)[:2]))

    walk(spec)
    return sorted(found)


def corpus_inputs(wildcards):
    paths = downloads_in(config["corpora"][wildcards.corpus])
    return ancient_all({f"download{i}": path for i, path in enumerate(paths)})


def store_dir(corpus):
    return f"{RESULTS}/corpora/{corpus}"


def vectors_dir(table):
    return f"{RESULTS}/vectors/{table}"


def checkpoint_path(run, words):
    return f"{RESULTS}/pretrain/{run}/words-{words}.bin"


def pretrain_inputs(wildcards):
    """Corpus, target (and input) vectors, and the state saved at the previous checkpoint."""
    spec = config["pretrain"][wildcards.run]
    inputs = {"store": store_dir(spec["corpus"]), "vectors": vectors_dir(spec["vectors"])}
    table = EXPERIMENT.input_vectors(wildcards.run)
    if table is not None:
        inputs["input_vectors"] = vectors_dir(table)
    if "parser" in spec:
        inputs["parse"] = f"{RESULTS}/parses/{spec['corpus']}/{spec['parser']}"
    previous = EXPERIMENT.previous_checkpoint(wildcards.run, int(wildcards.words))
    if previous is not None:
        inputs["previous_state"] = f"{RESULTS}/pretrain/{wildcards.run}/words-{previous}.state"
    return ancient_all(inputs)


def vector_source_inputs(wildcards):
    spec = config["vectors"][wildcards.table]
    inputs = {f"download{i}": path for i, path in enumerate(downloads_in(spec))}
    if "train" in spec:
        inputs["store"] = store_dir(spec["train"]["corpus"])
    return ancient_all(inputs)


def parser_task(wildcards):
    return ancient(f"{RESULTS}/tasks/{config['parsers'][wildcards.parser]['task']}")


def task_spec(wildcards):
    """What builds a task's data; its `train_sizes` only make other tasks, so changing them
    reruns nothing of this one."""
    spec = EXPERIMENT.tasks()[wildcards.task]
    return {key: value for key, value in spec.items() if key != "train_sizes"}


def task_inputs(wildcards):
    """A low-data task is cut from its parent task's splits; a configured task needs none."""
    spec = EXPERIMENT.tasks()[wildcards.task]
    if "subset_of" in spec:
        return ancient_all({"parent": f"{RESULTS}/tasks/{spec['subset_of']}"})
    return ancient_all({f"download{i}": path for i, path in enumerate(downloads_in(spec))})


def finetune_inputs(wildcards):
    """The task data, plus the checkpoint and input vectors this init needs."""
    inputs = {"task": f"{RESULTS}/tasks/{wildcards.task}"}
    multitask = EXPERIMENT.multitask().get(wildcards.run)
    if multitask is not None:  # unlabelled text and target vectors of the auxiliary loss
        inputs["aux_store"] = store_dir(multitask["corpus"])
        inputs["aux_vectors"] = vectors_dir(multitask["vectors"])
    elif wildcards.run != NO_PRETRAINING:
        inputs["checkpoint"] = checkpoint_path(wildcards.run, wildcards.words)
    table = EXPERIMENT.input_vectors(wildcards.run)
    if table is not None:
        inputs["vectors"] = vectors_dir(table)
    return ancient_all(inputs)


def finetune_logs():
    """Every fine-tuning log the config asks for: task × init × sample × seed (each its own
    job, so a cluster runs them side by side)."""
    return [
        ancient(
            f"{RESULTS}/finetune/{task}/{init.run}/words-{init.words}/sample-{sample}/seed-{seed}.jsonl"
        )
        for task in EXPERIMENT.tasks()
        for init in EXPERIMENT.inits()
        for sample in range(EXPERIMENT.n_samples())
        for seed in config["finetune"]["seeds"]
    ]


def data_outputs():
    return (
        [store_dir(corpus) for corpus in config["corpora"]]
        + [vectors_dir(table) for table in config["vectors"]]
        + [f"{RESULTS}/tasks/{task}" for task in EXPERIMENT.tasks()]
    )


def final_checkpoints():
    """Each pre-training run's last checkpoint; its folder's log.jsonl covers the whole run."""
    return {
        run: ancient(checkpoint_path(run, EXPERIMENT.checkpoints(run)[-1]))
        for run in config["pretrain"]
    }


def report_outputs():
    names = ("scores.csv", "table.md", "learning_curve.png", "metrics.json", "curves.csv")
    return [f"{RESULTS}/{name}" for name in names]


def decode_inputs(wildcards):
    """A checkpoint's state, its run's target (and input) vectors, the held-out store, and
    for the head objectives that store's parse by the run's parser."""
    spec = config["pretrain"][wildcards.run]
    corpus = EXPERIMENT.decode_corpus()
    inputs = {
        "state": f"{RESULTS}/pretrain/{wildcards.run}/words-{wildcards.words}.state",
        "store": store_dir(corpus),
        "vectors": vectors_dir(spec["vectors"]),
    }
    table = EXPERIMENT.input_vectors(wildcards.run)
    if table is not None:
        inputs["input_vectors"] = vectors_dir(table)
    if "parser" in spec:
        inputs["parse"] = f"{RESULTS}/parses/{corpus}/{spec['parser']}"
    return ancient_all(inputs)


def decode_evaluations():
    return [
        ancient(f"{RESULTS}/decode/{run}/words-{words}.json")
        for run in config["pretrain"]
        for words in EXPERIMENT.checkpoints(run)
    ]


def decode_outputs():
    """The decoding table, when the config asks for one."""
    if EXPERIMENT.decode_corpus() is None:
        return []
    return [f"{RESULTS}/decode/table.md"]
