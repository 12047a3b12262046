"""Rule `tokenize_corpus`: a configured corpus → token store."""

from itertools import chain

from lmao.logs import tee_stderr
from lmao.sources import iter_texts
from lmao.store import build_store

sm = snakemake  # noqa: F821  (injected by Snakemake)
tee_stderr(sm.log)
sources = sm.params.corpus["sources"]
build_store(chain.from_iterable(iter_texts(s) for s in sources), sm.output.store,
            n_process=sm.threads, provenance={"sources": sources})
