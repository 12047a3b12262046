# Fine-tuning: one job per task × init (checkpoint or none) × hyper-parameter sample × seed.
# The baseline without pre-training is run "none", words 0.


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
