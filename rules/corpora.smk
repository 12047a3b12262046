# Downloads (URL + checksum), and unlabelled corpora tokenized once into token stores.


rule download:
    output:
        folder=directory(download_dir("{download}")),
    params:
        spec=download_params,
    log:
        LAYOUT.job_log("download", "{download}"),
    conda:
        "../envs/corpora.yaml"
    script:
        "../workflow_scripts/download.py"


rule tokenize_corpus:
    input:
        unpack(corpus_inputs),
    output:
        store=directory(LAYOUT.store("{corpus}")),
    params:
        corpus=corpus_params,
        source_digests=corpus_source_digests,
    threads: 2  # tokenizer processes
    log:
        LAYOUT.job_log("tokenize_corpus", "{corpus}"),
    conda:
        "../envs/corpora.yaml"
    resources:
        mem_mb=4000,
    script:
        "../workflow_scripts/tokenize.py"
