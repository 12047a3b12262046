# Report: every fine-tuning log → tidy scores table, study-style table, learning curves.


rule report:
    input:
        scores=finetune_logs(),
    output:
        scores=f"{RESULTS}/scores.csv",
        table=report(f"{RESULTS}/table.md", caption="../report/table.rst", category="Results"),
        curve=report(f"{RESULTS}/learning_curve.png", caption="../report/learning_curve.rst",
                     category="Results"),
        metrics=f"{RESULTS}/metrics.json",
        points=f"{RESULTS}/curves.csv",
    log:
        f"{LOGS}/report.log",
    conda:
        "../envs/report.yaml"
    script:
        "../workflow_scripts/report.py"
