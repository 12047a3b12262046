"""Rule `tokenize_corpus`: a configured corpus → token store."""

from lmao.logs import tee_stderr

# First, so an import interrupted by Ctrl-C ends in one line too (lmao.logs).
sm = snakemake  # noqa: F821  (injected by Snakemake)
tee_stderr(sm.log)

from itertools import chain

from lmao.sources import iter_texts
from lmao.store import build_store

sources = sm.params.corpus["sources"]
build_store(chain.from_iterable(iter_texts(s) for s in sources), sm.output.store,
            n_process=sm.threads, provenance={"sources": sources})
