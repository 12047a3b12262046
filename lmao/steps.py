"""The data-making steps, one function per rule, for the rules whose work spans modules:
tokenizing a corpus, making a vectors table, building a task. A rule's script and the
matching `lmao` command both call these with the same job (`lmao.jobs`), so a step run by
hand makes what the workflow makes. (Pre-training, fine-tuning and decoding have their
functions in their own modules: `lmao.pretrain.pretrain`, `lmao.finetune.finetune`,
`lmao.decode.evaluate_checkpoint`.)
"""

from __future__ import annotations

from itertools import chain
from pathlib import Path

from .jobs import CorpusJob, TaskJob, VectorsJob


def tokenize_corpus(job: CorpusJob, out: str | Path, n_process: int = 1) -> dict:
    """Every source of a corpus, tokenized once into a token store; returns its meta."""
    from .sources import iter_texts
    from .store import build_store

    sources = job.spec["sources"]
    return build_store(chain.from_iterable(iter_texts(s) for s in sources), out,
                       n_process=n_process, provenance={"sources": sources})


def make_vectors(job: VectorsJob, out: str | Path, store: str | Path | None = None,
                 threads: int = 1) -> None:
    """A spaCy vectors table: trained with floret on `store` (`train:`), or imported from
    GloVe/fastText text, a fastText binary or a floret binary, optionally pruned."""
    from .store import TokenStore
    from .vector_models import read_fasttext_bin, save_floret_table, train_floret_table
    from .vectors import read_glove_text, save_table

    spec = job.spec
    if "train" in spec:
        if store is None:
            raise ValueError("vectors trained on a corpus need its token store")
        train = spec["train"]
        train_floret_table(TokenStore(store), out, dim=train["dim"], epochs=train["epochs"],
                           min_count=train["min_count"], model=train["model"], threads=threads)
    elif "floret_bin" in spec:
        save_floret_table(spec["floret_bin"]["path"], out)
    else:
        source = spec.get("text") or spec["fasttext_bin"]
        read = read_glove_text if "text" in spec else read_fasttext_bin
        words, matrix = read(source["path"], source.get("max_rows"))
        save_table(words, matrix, out, prune=source.get("prune"))


def make_task(job: TaskJob, out: str | Path, parent: str | Path | None = None) -> dict:
    """A task's train/dev/test DocBins from its sources, or a low-data variant cut from its
    built parent task (`parent`); returns the task's meta."""
    from .tasks import build_task, subsample_task

    spec = job.spec
    if "subset_of" not in spec:
        return build_task(spec, out)
    if parent is None:
        raise ValueError(f"a low-data task is cut from its parent task {spec['subset_of']!r}: "
                         "give the parent's built folder")
    return subsample_task(parent, out, spec["n_train"], seed=spec.get("split", {}).get("seed", 0))
