# Report: every fine-tuning log → tidy scores table, tables (markdown + CSV), plots (PNG + SVG).


rule report:
    input:
        scores=finetune_logs,
        halving=halving_decisions,
        checkpoints=list(final_checkpoints().values()),
    output:
        scores=LAYOUT.report_file("scores.csv"),
        table=report(
            LAYOUT.report_file("table.md"), caption="../report/table.rst", category="Results"
        ),
        curve=report(
            LAYOUT.report_file("learning_curve.png"),
            caption="../report/learning_curve.rst",
            category="Results",
        ),
        curve_svg=LAYOUT.report_file("learning_curve.svg"),
        by_words=report(
            LAYOUT.report_file("score_vs_words.png"),
            caption="../report/score_vs_words.rst",
            category="Results",
        ),
        by_words_svg=LAYOUT.report_file("score_vs_words.svg"),
        low_data=report(
            LAYOUT.report_file("low_data.png"), caption="../report/low_data.rst", category="Results"
        ),
        low_data_svg=LAYOUT.report_file("low_data.svg"),
        pretraining=report(
            LAYOUT.report_file("pretraining.png"),
            caption="../report/pretraining.rst",
            category="Pre-training",
        ),
        pretraining_svg=LAYOUT.report_file("pretraining.svg"),
        tables=directory(LAYOUT.report_file("tables")),
        metrics=LAYOUT.report_file("metrics.json"),
        points=LAYOUT.report_file("curves.csv"),
    params:
        # each run's training log, appended by all its checkpoints' jobs (so no one job's
        # output); the last checkpoint above is what the report waits for
        pretrain_logs={run: LAYOUT.pretrain_log(run) for run in config["pretrain"]},
    log:
        LAYOUT.job_log("report", "report"),
    conda:
        "../envs/report.yaml"
    script:
        "../workflow_scripts/report.py"
