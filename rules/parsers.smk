# Parsers for the head objectives: train one on a UD task, then parse a corpus's token
# store once (heads aligned with its tokens).


rule train_parser:
    input:
        task=parser_task,
    output:
        model=directory(f"{RESULTS}/parsers/{{parser}}"),
        scores=f"{RESULTS}/parsers/{{parser}}.scores.jsonl",
    params:
        job=parser_params,
    log:
        f"{LOGS}/parsers/{{parser}}.log",
    conda:
        "../envs/finetune.yaml"
    script:
        "../workflow_scripts/train_parser.py"


# No params: the parse is a function of its two inputs alone (no config setting reaches
# it), so it reruns exactly when the store or the parser does.
rule parse_corpus:
    input:
        store=f"{RESULTS}/corpora/{{corpus}}",
        parser=f"{RESULTS}/parsers/{{parser}}",
    output:
        parse=directory(f"{RESULTS}/parses/{{corpus}}/{{parser}}"),
    log:
        f"{LOGS}/parses/{{corpus}}/{{parser}}.log",
    conda:
        "../envs/finetune.yaml"
    script:
        "../workflow_scripts/parse_corpus.py"
