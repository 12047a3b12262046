# Report: every fine-tuning log → tidy scores table, study-style table, learning curves.


rule report:
    input:
        scores=finetune_logs(),
    output:
        scores=f"{RESULTS}/scores.csv",
        table=f"{RESULTS}/table.md",
        curve=f"{RESULTS}/learning_curve.png",
    log:
        f"{LOGS}/report.log",
    conda:
        "../envs/report.yaml"
    script:
        "../workflow_scripts/report.py"
