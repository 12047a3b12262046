# Nearest-neighbour decoding, when the config has a `decode:` section: each checkpoint's
# predictions on held-out text are mapped to words (exact search and an hnswlib index) and
# scored against the objective's targets; one table per experiment (see lmao.decode).


rule decode_checkpoint:
    input:
        unpack(decode_inputs),
    params:
        job=decode_params,
    output:
        evaluation=f"{RESULTS}/decode/{{run}}/words-{{words}}.json",
    log:
        f"{LOGS}/decode/{{run}}/words-{{words}}.log",
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
        json=f"{RESULTS}/decode/decode.json",
        table=f"{RESULTS}/decode/table.md",
    log:
        f"{LOGS}/decode/table.log",
    conda:
        "../envs/decode.yaml"
    script:
        "../workflow_scripts/decode.py"
