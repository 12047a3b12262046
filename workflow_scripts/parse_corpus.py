"""Rule `parse_corpus`: heads for every token of a store, from a trained parser."""

from lmao.logs import tee_stderr

# First, so an import interrupted by Ctrl-C ends in one line too (lmao.logs).
sm = snakemake  # noqa: F821  (injected by Snakemake)
tee_stderr(sm.log)

from lmao.parse import parse_store

parse_store(sm.input.store, sm.input.parser, sm.output.parse)
