"""LMAO pre-training: teach the CNN encoder to predict each token's static vector.

One function, `pretrain`, turns (token store, vector table, settings, checkpoint word
counts) into spaCy-loadable checkpoint files. The stream of words is deterministic given the
seed, checkpoints fall on exact word counts, and the full training state is saved with
each checkpoint so a killed run resumes where it stopped, bit for bit.

The parts, each small enough to read alone:
- `settings`: what a run is asked to do;
- `stream`: the words it trains on, in order, and which it masks;
- `objective`: what each token predicts, and the loss;
- `model`: the tok2vec + output head, and the head's forward/backward;
- `engines`: running the tok2vec on token ids (fast) or on Docs;
- `state`: saving, fingerprinting and resuming (host data only: device-independent);
- `loop`: the training loop, logging and pre-emption.
"""

from ..ops import to_host
from ..settings import ENGINES, LOSSES, MASK_WORD, OBJECTIVE_COLUMNS, OBJECTIVES, PretrainSettings
from .engines import DocTok2Vec, FastTok2Vec, NoFastPath, TypeFeatures, TypeVectors, make_engine
from .loop import Preempted, PretrainInputs, pretrain
from .model import (
    build_pretrain_model,
    columns,
    input_vocab,
    lmao_step,
    output_layer,
    output_of,
    select_rows,
    update_output,
)
from .objective import VectorObjective
from .state import (
    ChangedSettingsError,
    RunPaths,
    fingerprint,
    fingerprint_changes,
    model_from_state,
    read_state,
)
from .stream import Masker, WordStream

__all__ = [
    "ENGINES", "LOSSES", "MASK_WORD", "OBJECTIVES", "OBJECTIVE_COLUMNS",
    "ChangedSettingsError", "DocTok2Vec", "FastTok2Vec", "Masker", "NoFastPath", "Preempted",
    "PretrainInputs", "PretrainSettings", "RunPaths", "TypeFeatures", "TypeVectors",
    "VectorObjective", "WordStream", "build_pretrain_model", "columns", "fingerprint",
    "fingerprint_changes", "input_vocab", "lmao_step", "make_engine", "model_from_state",
    "output_layer", "output_of", "pretrain", "read_state", "select_rows", "to_host",
    "update_output",
]
