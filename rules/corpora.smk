# Unlabelled corpora, tokenized once into token stores (see lmao.store).


rule tokenize_corpus:
    output:
        store=directory(f"{RESULTS}/corpora/{{corpus}}"),
    params:
        sources=lambda wildcards: config["corpora"][wildcards.corpus]["sources"],
    threads: 2  # tokenizer processes
    log:
        f"{LOGS}/tokenize/{{corpus}}.log",
    conda:
        "../envs/corpora.yaml"
    resources:
        mem_mb=4000,
    script:
        "../workflow_scripts/tokenize.py"
