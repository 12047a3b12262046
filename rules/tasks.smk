# Labelled tasks: exact, seeded splits written as spaCy DocBins.


rule build_task:
    output:
        task=directory(f"{RESULTS}/tasks/{{task}}"),
    params:
        task=lambda wildcards: config["tasks"][wildcards.task],
    log:
        f"{LOGS}/tasks/{{task}}.log",
    conda:
        "../envs/finetune.yaml"
    script:
        "../workflow_scripts/task.py"
