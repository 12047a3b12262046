"""A fine-tuning run's state after each epoch, so that a killed or pre-empted run continues
from its last finished epoch instead of from scratch (a full-size UD run trains for half an
hour; a SLURM job of 8 grouped fine-tunes loses all of them to one pre-emption).

The state (`.seed-N.jsonl.resume` beside the run's log) holds the pipeline's weights, the
optimizer's moments and averages, every random stream the loop draws from, the best epoch
so far and the log lines written. A run resumes only from a state whose fingerprint equals
its own: the whole training config, the log's labels, the epoch budget, the files it reads
(path, size, modification and change times, inode: they are outputs of other jobs,
rewritten whenever their content changes) and the code (this package's sources; spaCy's,
thinc's and numpy's versions), so a rerun after an edit or a bug fix starts over. The state
is removed when the run's log is complete. A stage of a halving search (`lmao.halving`)
pauses the run after a decision epoch and leaves the state for the stage after it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import pickle
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import spacy
import thinc
from thinc.api import Config, Model, Ops, Optimizer

from .digests import stat_key
from .fileio import write_bytes
from .ops import optimizer_state, random_state, restore_optimizer, set_random_state


def pipeline_nodes(nlp) -> list[Model]:
    """Every node of every component's model, in pipeline order (the optimizer's keys)."""
    return [node for _, proc in nlp.pipeline
            if isinstance(getattr(proc, "model", None), Model) for node in proc.model.walk()]


def _file_stats(paths: list[Path]) -> list[list]:
    files = [file for path in paths for file in (
        sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path])]
    return [[str(file.resolve()), *stat_key(file)] for file in files]


@functools.cache
def code_version() -> str:
    """This package's sources and the versions of the libraries that train: a state saved
    by other code (a crash is often a bug, fixed before the rerun) is not resumed."""
    digest = hashlib.sha256(json.dumps(
        [spacy.__version__, thinc.__version__, np.__version__]).encode())
    for source in sorted(Path(__file__).parent.rglob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()


def run_fingerprint(config: Config, inputs: list[Path], settings: dict[str, Any]) -> str:
    """A digest of everything that decides the run's weights: its config, `settings` (log
    labels, epochs, patience, ...), its `inputs` (files or folders) and the code."""
    digest = hashlib.sha256(config.to_str().encode())
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    digest.update(json.dumps(_file_stats([p for p in inputs if p.exists()])).encode())
    digest.update(code_version().encode())
    return digest.hexdigest()


class EpochStates:
    """Saves and restores the state of one run between epochs, in the file `path`."""

    def __init__(self, path: str | Path, fingerprint: str):
        self.path = Path(path)
        self.fingerprint = fingerprint

    def save(self, nlp, optimizer: Optimizer, ops: Ops, shuffle: random.Random,
             progress: dict[str, Any]) -> None:
        state = {
            "fingerprint": self.fingerprint,
            "progress": progress,
            "weights": nlp.to_bytes(exclude=["vocab"]),
            "optimizer": optimizer_state(pipeline_nodes(nlp), optimizer),
            "shuffle": shuffle.getstate(),
            "python_random": random.getstate(),
            "numpy_random": np.random.get_state(),
            "ops_random": random_state(ops),
        }
        write_bytes(self.path, pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))

    def restore(self, nlp, optimizer: Optimizer, ops: Ops,
                shuffle: random.Random) -> dict[str, Any] | None:
        """Load the saved state into a freshly initialised run and return its progress;
        None (and the state removed) when there is none or it belongs to another run."""
        if not self.path.exists():
            return None
        try:
            state = pickle.loads(self.path.read_bytes())
            usable = isinstance(state, dict) and state.get("fingerprint") == self.fingerprint
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
                ImportError, IndexError, KeyError) as err:
            usable, state = False, None
            print(f"{self.path}: unreadable ({type(err).__name__}); starting over",
                  file=sys.stderr)
        if not usable:
            if state is not None:
                print(f"{self.path}: saved by a run with other settings or data; starting "
                      "over", file=sys.stderr)
            self.clear()
            return None
        nlp.from_bytes(state["weights"], exclude=["vocab"])
        restore_optimizer(pipeline_nodes(nlp), optimizer, state["optimizer"], ops)
        shuffle.setstate(state["shuffle"])
        random.setstate(state["python_random"])
        np.random.set_state(state["numpy_random"])
        set_random_state(ops, state["ops_random"])
        progress = state["progress"]
        print(f"{self.path}: resuming after epoch {progress['rows'][-1]['epoch']}",
              file=sys.stderr)
        return progress

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
