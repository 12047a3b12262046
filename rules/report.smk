# Report: every fine-tuning log → tidy scores table, tables (markdown + CSV), plots (PNG + SVG).


rule report:
    input:
        scores=finetune_logs(),
        checkpoints=list(final_checkpoints().values()),
    output:
        scores=f"{RESULTS}/scores.csv",
        table=report(f"{RESULTS}/table.md", caption="../report/table.rst", category="Results"),
        curve=report(f"{RESULTS}/learning_curve.png", caption="../report/learning_curve.rst",
                     category="Results"),
        curve_svg=f"{RESULTS}/learning_curve.svg",
        by_words=report(f"{RESULTS}/score_vs_words.png", caption="../report/score_vs_words.rst",
                        category="Results"),
        by_words_svg=f"{RESULTS}/score_vs_words.svg",
        low_data=report(f"{RESULTS}/low_data.png", caption="../report/low_data.rst",
                        category="Results"),
        low_data_svg=f"{RESULTS}/low_data.svg",
        pretraining=report(f"{RESULTS}/pretraining.png", caption="../report/pretraining.rst",
                           category="Pre-training"),
        pretraining_svg=f"{RESULTS}/pretraining.svg",
        tables=directory(f"{RESULTS}/tables"),
        metrics=f"{RESULTS}/metrics.json",
        points=f"{RESULTS}/curves.csv",
    params:
        runs=list(config["pretrain"]),
    log:
        f"{LOGS}/report.log",
    conda:
        "../envs/report.yaml"
    script:
        "../workflow_scripts/report.py"
