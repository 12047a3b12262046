# Fine-tuning: one job per task × init (checkpoint or none) × hyper-parameter sample × seed.
# The baseline without pre-training is run "none", words 0.


rule finetune:
    input:
        unpack(finetune_inputs),
    params:
        job=finetune_params,
    output:
        scores=f"{RESULTS}/finetune/{{task}}/{{run}}/words-{{words}}/sample-{{sample}}/seed-{{seed}}.jsonl",
    log:
        f"{LOGS}/finetune/{{task}}/{{run}}/words-{{words}}/sample-{{sample}}/seed-{{seed}}.log",
    conda:
        "../envs/finetune.yaml"
    resources:
        mem_mb=3000,
    script:
        "../workflow_scripts/finetune.py"
