"""Rule `vectors`: a spaCy vectors table trained on a corpus or imported from a file."""

from lmao.logs import tee_stderr

# First, so an import interrupted by Ctrl-C ends in one line too (lmao.logs).
sm = snakemake  # noqa: F821  (injected by Snakemake)
tee_stderr(sm.log)

from lmao.store import TokenStore
from lmao.vector_models import read_fasttext_bin, save_floret_table, train_floret_table
from lmao.vectors import read_glove_text, save_table

spec = sm.params.spec
if "train" in spec:
    train = spec["train"]
    train_floret_table(TokenStore(sm.input.store), sm.output.table, dim=train["dim"],
                       epochs=train["epochs"], min_count=train["min_count"],
                       model=train["model"], threads=sm.threads)
elif "floret_bin" in spec:
    save_floret_table(spec["floret_bin"]["path"], sm.output.table)
else:
    source = spec.get("text") or spec["fasttext_bin"]
    read = read_glove_text if "text" in spec else read_fasttext_bin
    words, matrix = read(source["path"], source.get("max_rows"))
    save_table(words, matrix, sm.output.table, prune=source.get("prune"))
