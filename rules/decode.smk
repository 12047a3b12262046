# Nearest-neighbour decoding, when the config has a `decode:` section: each checkpoint's
# predictions on held-out text are mapped to words (exact search and an hnswlib index) and
# scored against the objective's targets; one table per experiment (see lmao.decode).


rule decode_checkpoint:
    input:
        unpack(decode_inputs),
    params:
        job=decode_params,
    output:
        evaluation=LAYOUT.decode("{run}", "{words}"),
    log:
        LAYOUT.job_log("decode_checkpoint", "{run}", "words-{words}"),
    threads: 1  # exact and ANN queries per second are compared on one thread each
    conda:
        "../envs/decode.yaml"
    resources:
        mem_mb=2000,
    script:
        "../workflow_scripts/decode.py"


# No params: the table is a function of the per-checkpoint evaluations alone.
rule decode_table:
    input:
        evaluations=decode_evaluations(),
    output:
        json=LAYOUT.result("decode", "decode.json"),
        table=LAYOUT.decode_table(),
    log:
        LAYOUT.job_log("decode_table", "table"),
    conda:
        "../envs/decode.yaml"
    script:
        "../workflow_scripts/decode.py"
