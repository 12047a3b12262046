"""Rules `train_vectors` / `import_vectors`: a spaCy vectors table from a corpus or a file."""

from lmao.logs import tee_stderr
from lmao.store import TokenStore
from lmao.train_vectors import train_floret_table
from lmao.vectors import read_glove_text, save_table

sm = snakemake  # noqa: F821  (injected by Snakemake)
tee_stderr(sm.log)
spec = sm.params.spec
if "train" in spec:
    train = spec["train"]
    train_floret_table(TokenStore(sm.input.store), sm.output.table, dim=train["dim"],
                       epochs=train["epochs"], min_count=train["min_count"],
                       model=train["model"], threads=sm.threads)
else:
    words, matrix = read_glove_text(spec["text"]["path"], spec["text"].get("max_rows"))
    save_table(words, matrix, sm.output.table)
