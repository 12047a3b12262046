# Downloads (URL + checksum), and unlabelled corpora tokenized once into token stores.


rule download:
    output:
        folder=directory(f"{DOWNLOADS}/{{download}}"),
    params:
        spec=download_params,
    log:
        f"{LOGS}/download/{{download}}.log",
    conda:
        "../envs/corpora.yaml"
    script:
        "../workflow_scripts/download.py"


rule tokenize_corpus:
    input:
        unpack(corpus_inputs),
    output:
        store=directory(f"{RESULTS}/corpora/{{corpus}}"),
    params:
        corpus=corpus_params,
        source_digests=corpus_source_digests,
    threads: 2  # tokenizer processes
    log:
        f"{LOGS}/tokenize/{{corpus}}.log",
    conda:
        "../envs/corpora.yaml"
    resources:
        mem_mb=4000,
    script:
        "../workflow_scripts/tokenize.py"
