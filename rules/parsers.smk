# Parsers for the head objectives: train one on a UD task, then parse a corpus's token
# store once (heads aligned with its tokens).


rule train_parser:
    input:
        task=parser_task,
    output:
        model=directory(LAYOUT.parser("{parser}")),
        scores=LAYOUT.parser_scores("{parser}"),
    params:
        job=parser_params,
    log:
        LAYOUT.job_log("train_parser", "{parser}"),
    conda:
        "../envs/finetune.yaml"
    script:
        "../workflow_scripts/train_parser.py"


# No params: the parse is a function of its two inputs alone (no config setting reaches
# it), so it reruns exactly when the store or the parser does.
rule parse_corpus:
    input:
        store=LAYOUT.store("{corpus}"),
        parser=LAYOUT.parser("{parser}"),
    output:
        parse=directory(LAYOUT.parse("{corpus}", "{parser}")),
    log:
        LAYOUT.job_log("parse_corpus", "{corpus}", "{parser}"),
    conda:
        "../envs/finetune.yaml"
    script:
        "../workflow_scripts/parse_corpus.py"
