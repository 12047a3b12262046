# Static vector tables: trained with floret on a corpus, or imported from GloVe/fastText text.


rule vectors:
    input:
        unpack(vector_source_inputs),
    output:
        table=directory(LAYOUT.vectors("{table}")),
    params:
        spec=vectors_params,
        source_digests=vectors_source_digests,
    threads: vectors_threads
    log:
        LAYOUT.job_log("vectors", "{table}"),
    conda:
        "../envs/vectors.yaml"
    resources:
        mem_mb=4000,
    script:
        "../workflow_scripts/vectors.py"
