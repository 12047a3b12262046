# Fine-tuning: one job per task × init (checkpoint or none) × hyper-parameter sample × seed.
# The baseline without pre-training is run "none", words 0.
#
# With `finetune.search.halving`, each run trains in stages: `finetune_stage` up to a
# decision epoch (then paused, its state kept), the checkpoint `halving` ranks the task's
# samples on those stage logs and keeps the best, and only the kept samples' runs go on
# (the next stage, or `finetune` up to the cap). The rule inputs ask the decisions which
# samples are still in the race (rules/common.smk, `samples_in_race`).


rule finetune:
    input:
        unpack(finetune_inputs),
    params:
        job=finetune_params,
    output:
        scores=LAYOUT.finetune_scores("{task}", "{run}", "{words}", "{sample}", "{seed}"),
    log:
        LAYOUT.job_log(
            "finetune", "{task}", "{run}", "words-{words}", "sample-{sample}", "seed-{seed}"
        ),
    conda:
        "../envs/finetune.yaml"
    resources:
        mem_mb=3000,
    script:
        "../workflow_scripts/finetune.py"


rule finetune_stage:
    input:
        unpack(finetune_stage_inputs),
    params:
        job=finetune_stage_params,
        state=finetune_state_path,
    output:
        scores=LAYOUT.finetune_stage("{task}", "{run}", "{words}", "{sample}", "{seed}", "{epoch}"),
    log:
        LAYOUT.job_log(
            "finetune_stage",
            "{task}",
            "{run}",
            "words-{words}",
            "sample-{sample}",
            "seed-{seed}.epoch-{epoch}",
        ),
    conda:
        "../envs/finetune.yaml"
    resources:
        mem_mb=3000,
    script:
        "../workflow_scripts/finetune.py"


checkpoint halving:
    input:
        stages=halving_stage_logs,
    params:
        rule=halving_params,
    output:
        decision=LAYOUT.halving_decision("{task}", "{epoch}"),
    log:
        LAYOUT.job_log("halving", "{task}", "halving-epoch-{epoch}"),
    conda:
        "../envs/finetune.yaml"
    script:
        "../workflow_scripts/halving.py"
