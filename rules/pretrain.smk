# LMAO pre-training. One job per checkpoint: the job for N words resumes from the state
# saved at the run's previous checkpoint and trains up to exactly N words, so fine-tuning
# from early checkpoints starts while later ones are still training. A killed job resumes
# from its last periodic state (results/<name>/pretrain/<run>/partial.state).


rule pretrain:
    input:
        unpack(pretrain_inputs),
    params:
        job=pretrain_params,
    output:
        checkpoint=LAYOUT.checkpoint("{run}", "{words}"),
        state=LAYOUT.state("{run}", "{words}"),
    log:
        LAYOUT.job_log("pretrain", "{run}", "words-{words}"),
    benchmark:
        LAYOUT.pretrain_benchmark("{run}", "{words}")
    threads: 2  # matrix products use every thread Snakemake grants (OMP/OpenBLAS)
    priority: 10  # checkpoints gate most fine-tunes: start them before any fine-tune
    conda:
        "../envs/pretrain.yaml"
    resources:
        mem_mb=4000,
    script:
        "../workflow_scripts/pretrain.py"
