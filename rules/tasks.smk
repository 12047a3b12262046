# Labelled tasks: exact, seeded splits written as spaCy DocBins; a low-data task
# `{task}-n{N}` (from `train_sizes`) is a seeded sample of its parent's training split.


rule build_task:
    input:
        unpack(task_inputs),
    output:
        task=directory(LAYOUT.task("{task}")),
    params:
        task=task_params,
        source_digests=task_source_digests,
    log:
        LAYOUT.job_log("build_task", "{task}"),
    conda:
        "../envs/finetune.yaml"
    script:
        "../workflow_scripts/task.py"
