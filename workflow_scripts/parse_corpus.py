"""Rule `parse_corpus`: heads for every token of a store, from a trained parser."""

from lmao.logs import tee_stderr
from lmao.parse import parse_store

sm = snakemake  # noqa: F821  (injected by Snakemake)
tee_stderr(sm.log)
parse_store(sm.input.store, sm.input.parser, sm.output.parse)
