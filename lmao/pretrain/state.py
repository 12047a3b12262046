"""Everything a run needs to continue where it stopped, and to know it may.

A state (`words-N.state`, `partial.state`) is a pickle of host data only: model bytes,
optimizer moments and averages as numpy arrays, and the random generators' states. A
state written on a GPU therefore resumes on a CPU (and the other way round), and decoding
reads it on either. Its fingerprint names every setting that changes the weights, so a run
resumes only from a state trained the way it would train.
"""

from __future__ import annotations

import json
import pickle
import random
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from spacy.tokens import Doc
from spacy.vocab import Vocab
from thinc.api import Model, Ops, Optimizer

from ..fileio import InputError, write_bytes, write_text
from ..layout import PARTIAL_STATE, PRETRAIN_LOG, checkpoint_name, state_name
from ..ops import optimizer_state, random_state, restore_optimizer, set_random_state
from ..settings import PretrainSettings
from ..store import TokenStore
from .model import build_pretrain_model

# Settings that change what is saved or logged when, never what is trained.
NOT_FINGERPRINTED = ("log_every_words", "save_every_words", "on_changed_settings")


def fingerprint(settings: PretrainSettings, store: TokenStore, targets_shape: tuple[int, int],
                inputs_shape: tuple[int, int] | None) -> dict[str, Any]:
    """What a saved state was trained with: every setting that changes the weights, and the
    sizes of the corpus and vector tables. A state resumes only under an equal fingerprint."""
    flat = {key: value for key, value in asdict(settings).items()
            if key not in NOT_FINGERPRINTED and key != "encoder"}
    flat.update({f"encoder.{key}": value for key, value in asdict(settings.encoder).items()})
    flat.update({"corpus.n_words": store.n_words, "corpus.n_types": len(store.types),
                 "targets.shape": list(targets_shape),
                 "input_vectors.shape": list(inputs_shape) if inputs_shape else None})
    return json.loads(json.dumps(flat, sort_keys=True))


def fingerprint_changes(saved: dict[str, Any] | None, current: dict[str, Any]) -> list[str]:
    """`key: saved → current` for each difference (empty when the fingerprints are equal)."""
    if saved is None:
        return ["(no fingerprint: the state was written by an older version)"]
    return [f"{key}: {saved.get(key, '(absent)')!r} → {current.get(key, '(absent)')!r}"
            for key in sorted(set(saved) | set(current)) if saved.get(key) != current.get(key)]


class ChangedSettingsError(ValueError):
    """A saved state was trained under other settings than the run that would resume it."""


@dataclass
class RunPaths:
    """Files of one pre-training run (`Layout.pretrain_run`), named as `lmao.layout` names
    the rule's outputs: `words-N.bin` (spaCy tok2vec bytes) and `words-N.state` (everything
    needed to continue from N) per checkpoint, a periodic `partial.state`, and the
    JSON-lines training log."""

    out_dir: Path

    @property
    def log(self) -> Path:
        return self.out_dir / PRETRAIN_LOG

    @property
    def partial_state(self) -> Path:
        return self.out_dir / PARTIAL_STATE

    def checkpoint(self, words: int) -> Path:
        return self.out_dir / checkpoint_name(words)

    def state(self, words: int) -> Path:
        return self.out_dir / state_name(words)

    def latest_state(self, checkpoints: list[int], current: dict[str, Any] | None = None,
                     on_changed: str = "error") -> Path | None:
        """The saved state furthest along that does not go past the last checkpoint.

        With a `current` fingerprint, a state saved under another one is refused with a
        `ChangedSettingsError` naming the differences, or skipped (`on_changed="restart"`).
        """
        candidates = [self.state(n) for n in checkpoints if self.state(n).exists()]
        if self.partial_state.exists():
            candidates.append(self.partial_state)
        found = []
        for path in candidates:
            state = read_state(path)
            if state["words"] <= checkpoints[-1]:
                found.append((state["words"], path, state.get("fingerprint")))
        for _words, path, saved in sorted(found, key=lambda item: item[0], reverse=True):
            changes = [] if current is None else fingerprint_changes(saved, current)
            if not changes:
                return path
            if on_changed == "error":
                raise ChangedSettingsError(
                    f"{path}: this state was trained under other settings, so the run does "
                    f"not resume from it ({'; '.join(changes)}). Delete it (and the run's "
                    "other states) to start over, or set the run's settings."
                    "on_changed_settings: restart")
            print(f"{path}: trained under other settings ({'; '.join(changes)}); "
                  "not resumed (on_changed_settings: restart)", file=sys.stderr)
        return None


def read_state(path: str | Path) -> dict:
    """A saved state, or an InputError naming the file when it is not one."""
    path = Path(path)
    try:
        state = pickle.loads(path.read_bytes())
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            ImportError, IndexError, KeyError) as err:
        raise InputError(path, None, f"not a readable pre-training state ({type(err).__name__}"
                         f": {err}); a truncated or foreign file? Delete it to start over"
                         ) from err
    if not isinstance(state, dict) or "words" not in state or "model" not in state:
        raise InputError(path, None, "not a pre-training state (no words/model entries)")
    return state


def save_state(path: Path, model: Model, optimizer: Optimizer, words: int,
               generators: dict[str, np.random.Generator], ops: Ops,
               fingerprint: dict[str, Any]) -> None:
    state = {
        "words": words,
        "fingerprint": fingerprint,
        "model": model.to_bytes(),  # thinc writes host arrays
        "optimizer": optimizer_state(list(model.walk()), optimizer),
        "numpy_random": np.random.get_state(),
        "python_random": random.getstate(),
        "generators": {name: rng.bit_generator.state for name, rng in generators.items()},
        "ops_random": random_state(ops),
    }
    write_bytes(path, pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))


def restore_state(state: dict, model: Model, optimizer: Optimizer,
                  generators: dict[str, np.random.Generator], ops: Ops) -> int:
    """Load a saved state into a freshly built run; return its word count. The dropout
    stream continues where it stopped on the same kind of device; on another device it
    starts from the run's seed (the weights, moments and word position are exact)."""
    model.from_bytes(state["model"])
    restore_optimizer(list(model.walk()), optimizer, state["optimizer"], ops)
    np.random.set_state(state["numpy_random"])
    random.setstate(state["python_random"])
    for name, rng in generators.items():
        rng.bit_generator.state = state["generators"][name]
    set_random_state(ops, state.get("ops_random"))
    return int(state["words"])


def model_from_state(path: str | Path, settings: PretrainSettings, target_width: int,
                     vocab: Vocab) -> tuple[Model, int]:
    """The pre-training model (encoder + output head) of a `words-N.state`, with the
    optimizer's parameter averages as weights (what `words-N.bin` holds for the encoder),
    and the word count it was saved at."""
    state = read_state(path)
    model = build_pretrain_model(settings, target_width)
    model.initialize(X=[Doc(vocab, words=["a", "b"])])
    model.from_bytes(state["model"])
    nodes = list(model.walk())
    for (position, name), value in (state["optimizer"].get("averages") or {}).items():
        nodes[position].set_param(name, model.ops.asarray(np.array(value, copy=True)))
    return model, int(state["words"])


def truncate_log(path: Path, words: int) -> None:
    """Drop log lines written after the state we resume from. A torn last line (what a kill
    or a full disk leaves) is dropped with a warning; a bad line before it is an error."""
    if not path.exists():
        return
    lines = [(n, line) for n, line in enumerate(path.read_text().splitlines(), start=1)
             if line.strip()]
    kept = []
    for i, (line_no, line) in enumerate(lines):
        try:
            entry = json.loads(line)
            logged_words = int(entry["words"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            if i == len(lines) - 1:
                print(f"{path}:{line_no}: dropping a torn last line ({err})", file=sys.stderr)
                break
            raise InputError(path, line_no, f"not a log entry with 'words' ({err})") from err
        if logged_words <= words:
            kept.append(line)
    write_text(path, "".join(line + "\n" for line in kept))


# ---------------------------------------------------------------- the loop
