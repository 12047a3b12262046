# Parsers for the head objectives: train one on a UD task, then parse a corpus's token
# store once (heads aligned with its tokens).


rule train_parser:
    input:
        task=parser_task,
    output:
        model=directory(f"{RESULTS}/parsers/{{parser}}"),
        scores=f"{RESULTS}/parsers/{{parser}}.scores.jsonl",
    params:
        spec=lambda wildcards: config["parsers"][wildcards.parser],
    log:
        f"{LOGS}/parsers/{{parser}}.log",
    conda:
        "../envs/finetune.yaml"
    script:
        "../workflow_scripts/train_parser.py"


rule parse_corpus:
    input:
        store=ancient(f"{RESULTS}/corpora/{{corpus}}"),
        parser=ancient(f"{RESULTS}/parsers/{{parser}}"),
    output:
        parse=directory(f"{RESULTS}/parses/{{corpus}}/{{parser}}"),
    log:
        f"{LOGS}/parses/{{corpus}}/{{parser}}.log",
    conda:
        "../envs/finetune.yaml"
    script:
        "../workflow_scripts/parse_corpus.py"
