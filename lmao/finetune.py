"""Fine-tuning with spaCy's own components, from a generated config, evaluated every epoch.

The config is an ordinary spaCy training config; a checkpoint enters it only through
`[initialize] init_tok2vec`, exactly as a user would load one by hand. The loop is spaCy's
`nlp.update` / `nlp.evaluate`, driven per epoch so each epoch's dev score is logged.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from spacy.language import DEFAULT_CONFIG_PRETRAIN_PATH
from spacy.schemas import ConfigSchemaTraining
from spacy.tokens import Doc, DocBin
from spacy.training import Corpus, Example
from spacy.training.augment import dont_augment
from spacy.training.initialize import init_nlp
from spacy.util import load_config, registry
from spacy.vocab import Vocab
from thinc.api import Config, Optimizer, get_current_ops

from .encoder import build_tok2vec, tok2vec_config
from .fast_finetune import install_fast_path
from .fast_finetune import pipe as fast_pipe
from .fileio import InputError, atomic_dir, atomic_path
from .finetune_state import EpochStates, run_fingerprint
from .fused_adam import fuse_adam
from .grid import PRIMARY_METRIC
from .jobs import FinetuneInputs, FinetuneJob
from .layout import resume_path
from .multitask import AuxiliaryLMAO, AuxiliarySettings
from .ops import BlasOps, using_ops
from .settings import DEFAULT_HYPERPARAMETERS, EncoderSettings, batch_words_for
from .tasks import train_size

_LISTENER = {"@architectures": "spacy.Tok2VecListener.v1", "width": None, "upstream": "*"}


def _parser_model(state_type: str, hidden_width: int, listener: dict) -> dict[str, Any]:
    return {
        "@architectures": "spacy.TransitionBasedParser.v2",
        "state_type": state_type,
        "extra_state_tokens": False,
        "hidden_width": hidden_width,
        "maxout_pieces": 2 if state_type == "ner" else 3,
        "use_upper": True,
        "nO": None,
        "tok2vec": listener,
    }


# Text classifiers: the CNN's mean-pooled output (reduce), spaCy's accuracy-oriented
# ensemble of that and a bag-of-words model (ensemble), and spaCy's efficiency model, a
# bag-of-words linear model with no encoder at all (bow: the reference a user would pick).
TEXTCAT_MODELS = ("reduce", "ensemble", "bow")


def _bag_of_words() -> dict[str, Any]:
    """spaCy's `efficiency` text classifier (`spacy init config -p textcat -o efficiency`)."""
    return {"@architectures": "spacy.TextCatBOW.v3", "exclusive_classes": True,
            "ngram_size": 1, "no_output_layer": False, "length": 262144, "nO": None}


def textcat_model(name: str, listener: dict[str, Any]) -> dict[str, Any]:
    if name == "bow":
        return _bag_of_words()
    if name == "ensemble":  # spaCy's `accuracy` text classifier, on our encoder
        return {"@architectures": "spacy.TextCatEnsemble.v2", "nO": None, "tok2vec": listener,
                "linear_model": _bag_of_words()}
    if name == "reduce":
        return {"@architectures": "spacy.TextCatReduce.v1", "exclusive_classes": True,
                "use_reduce_first": False, "use_reduce_last": False, "use_reduce_max": False,
                "use_reduce_mean": True, "nO": None, "tok2vec": listener}
    raise ValueError(f"textcat model {name!r}: expected one of {TEXTCAT_MODELS}")


def task_components(task_type: str, width: int, textcat: str = "reduce"
                    ) -> dict[str, dict[str, Any]]:
    """The task's components (name → config block), each listening to the shared tok2vec
    (except the bag-of-words text classifier, which has no encoder)."""
    listener = {**_LISTENER, "width": width}
    if task_type == "textcat":
        return {"textcat": {"factory": "textcat", "threshold": 0.5,
                            "model": textcat_model(textcat, listener)}}
    if task_type == "ner":
        return {"ner": {"factory": "ner", "model": _parser_model("ner", 64, listener)}}
    if task_type == "ud":
        return {
            "tagger": {"factory": "tagger", "model": {
                "@architectures": "spacy.Tagger.v2", "nO": None, "normalize": False,
                "tok2vec": listener}},
            "parser": {"factory": "parser", "learn_tokens": False, "min_action_freq": 1,
                       "model": _parser_model("parser", 128, listener)},
        }
    raise ValueError(f"unknown task type {task_type!r}")


def training_config(
    task_type: str,
    task_dir: str | Path,
    encoder: EncoderSettings,
    hyperparameters: dict[str, Any],
    seed: int,
    init_tok2vec: str | Path | None = None,
    vectors: str | Path | None = None,
    textcat: str = "reduce",
) -> Config:
    """A complete spaCy training config for one fine-tuning run (`textcat`: the text
    classifier, see TEXTCAT_MODELS; "bow" has no encoder, so no tok2vec component)."""
    encoded = not (task_type == "textcat" and textcat == "bow")
    if encoded and encoder.include_static_vectors and vectors is None:
        raise ValueError("the encoder takes static vectors, so fine-tuning needs a vectors table")
    if not encoded and init_tok2vec is not None:
        raise ValueError("the bag-of-words classifier has no encoder to initialise")
    hp = {**DEFAULT_HYPERPARAMETERS, **hyperparameters}  # (a job's are complete already)
    task_dir = Path(task_dir)
    components = task_components(task_type, encoder.width, textcat)
    tok2vec = {"tok2vec": {"factory": "tok2vec", "model": tok2vec_config(encoder)}} \
        if encoded else {}
    config = {
        "paths": {"train": str(task_dir / "train.spacy"), "dev": str(task_dir / "dev.spacy")},
        "system": {"seed": seed, "gpu_allocator": None},
        "nlp": {"lang": "en", "pipeline": [*tok2vec, *components], "batch_size": 256},
        "components": {**tok2vec, **components},
        "corpora": {
            split: {"@readers": "spacy.Corpus.v1", "path": f"${{paths.{split}}}",
                    "max_length": 0, "gold_preproc": False, "limit": 0, "augmenter": None}
            for split in ("train", "dev")
        },
        "training": {
            "seed": "${system.seed}",
            "gpu_allocator": "${system.gpu_allocator}",
            "dropout": hp["dropout"],
            "max_epochs": 1,
            "optimizer": {
                "@optimizers": "Adam.v1",
                "learn_rate": hp["learn_rate"],
                "beta1": hp["beta1"],
                "beta2": hp["beta2"],
                "eps": hp["eps"],
                "L2": hp["L2"],
                "L2_is_weight_decay": True,
                "grad_clip": hp["grad_clip"],
                "use_averages": True,
            },
            "batcher": {
                "@batchers": "spacy.batch_by_words.v1",
                "size": hp["batch_words"],
                "tolerance": 0.2,
                "discard_oversize": False,
            },
        },
        "initialize": {
            "vectors": str(vectors) if vectors and encoded else None,
            "init_tok2vec": str(init_tok2vec) if init_tok2vec else None,
        },
    }
    if encoded:
        pretraining = load_config(DEFAULT_CONFIG_PRETRAIN_PATH)["pretraining"]
        config["pretraining"] = {**pretraining, "component": "tok2vec", "layer": ""}
    return Config(config)


class ScaledOptimizer:
    """An optimizer that updates with its learn rate scaled (and shares its Adam state)."""

    def __init__(self, optimizer: Optimizer, scale: float):
        self.optimizer, self.scale = optimizer, scale

    def __call__(self, key, weights, gradient, *, lr_scale: float = 1.0):
        return self.optimizer(key, weights, gradient, lr_scale=lr_scale * self.scale)


def apply_gradients(nlp, optimizer: Optimizer, encoder_optimizer: ScaledOptimizer | None):
    """Update every trainable component once its gradients are complete; the shared tok2vec
    with `encoder_optimizer`, or not at all (gradients dropped) while it is frozen."""
    for name, proc in nlp.pipeline:
        if not getattr(proc, "is_trainable", False) or proc.model in (True, False, None):
            continue
        if name != "tok2vec":
            proc.finish_update(optimizer)
        elif encoder_optimizer is not None:
            proc.finish_update(encoder_optimizer)
        else:
            for node in proc.model.walk():
                for param in node.param_names:
                    if node.has_grad(param):
                        node.set_grad(param, node.ops.alloc(node.get_grad(param).shape))


def evaluate(task_type: str, nlp, examples: list[Example]) -> dict[str, float]:
    """Dev metrics from one prediction pass: accuracy, macro F and the majority-class rate
    (textcat), P/R/F (NER), POS accuracy, UAS and LAS (UD)."""
    predicted = fast_pipe(nlp, (_unannotated(nlp.vocab, eg.reference) for eg in examples))
    scored = [Example(doc, eg.reference) for doc, eg in zip(predicted, examples, strict=True)]
    scores = {}
    for name in task_components(task_type, 0):
        scores.update(nlp.get_pipe(name).score(scored))
    if task_type == "textcat":
        correct = sum(
            max(eg.predicted.cats, key=eg.predicted.cats.get)
            == max(eg.reference.cats, key=eg.reference.cats.get)
            for eg in scored
        )
        gold = Counter(max(eg.reference.cats, key=eg.reference.cats.get) for eg in scored)
        return {"accuracy": correct / max(len(scored), 1),
                "macro_f": float(scores["cats_macro_f"] or 0.0),
                # what always guessing the most frequent label scores: the floor to beat
                "majority_class": max(gold.values(), default=0) / max(len(scored), 1)}
    if task_type == "ud":
        return {"pos_acc": float(scores["tag_acc"] or 0.0),
                "uas": float(scores["dep_uas"] or 0.0), "las": float(scores["dep_las"] or 0.0)}
    return {key: float(scores[f"ents_{key[-1]}"] or 0.0) for key in ("ents_f", "ents_p", "ents_r")}


def _unannotated(vocab, doc: Doc) -> Doc:
    """The reference's tokens without annotations: models see the gold tokenization."""
    return Doc(vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])


@contextlib.contextmanager
def corpus_read_once() -> Iterator[None]:
    """Inside the block, a spaCy `Corpus` asked again for the same pipeline's examples
    yields the examples of its first pass instead of reading them again.

    spaCy's `init_nlp` asks the training corpus for its whole stream several times
    (`Language.initialize` and each component validate every example, the text classifier
    then collects its labels): each pass re-reads the DocBin and re-tokenizes every text
    (~1 s for 1,000 IMDB reviews here). A corpus that shuffles or augments, whose passes
    differ, is read as before; otherwise the pipeline is initialised from the very same
    examples in the same order (tested: the same weights and labels)."""
    plain = Corpus.__call__
    passes: dict[tuple[int, int], list[Example]] = {}

    def first_pass(corpus: Corpus, nlp) -> Iterator[Example]:
        if corpus.shuffle or corpus.augmenter is not dont_augment:
            return plain(corpus, nlp)
        key = (id(corpus), id(nlp))
        if key not in passes:
            passes[key] = list(plain(corpus, nlp))
        return iter(passes[key])

    Corpus.__call__ = first_pass
    try:
        yield
    finally:
        Corpus.__call__ = plain


def read_examples(nlp, path: Path) -> list[Example]:
    docs = DocBin().from_disk(path).get_docs(nlp.vocab)
    return [Example(_unannotated(nlp.vocab, doc), doc) for doc in docs]


def check_checkpoint(path: str | Path, encoder: EncoderSettings) -> None:
    """Refuse a checkpoint that is not a tok2vec of `encoder`'s architecture (another
    width, depth or hash table, a truncated file) before spaCy fails deep inside training."""
    try:
        data = Path(path).read_bytes()
        build_tok2vec(encoder).from_bytes(data)
    except OSError as err:
        raise InputError(path, None, f"unreadable checkpoint ({err})") from err
    except Exception as err:  # msgpack, shape and key errors: all mean "does not fit"
        raise InputError(path, None, f"not a checkpoint of this encoder (width "
                         f"{encoder.width}, depth {encoder.depth}, rows {encoder.rows}, "
                         f"static vectors {encoder.include_static_vectors}): "
                         f"{type(err).__name__}: {str(err)[:200]}") from err


def train_words(path: Path) -> int:
    """Tokens in a training DocBin."""
    return sum(len(doc) for doc in DocBin().from_disk(path).get_docs(Vocab()))


def finetune(job: FinetuneJob, inputs: FinetuneInputs, out_path: str | Path,
             best_model_dir: str | Path | None = None,
             state_path: str | Path | None = None) -> list[dict]:
    """Train for `job.epochs` epochs; write one JSON line of dev scores per epoch to
    `out_path`, then, where the task has a test split, one line of the best dev epoch's test
    scores. With `job.patience`, a run stops once that many epochs have passed without a
    better dev score; its last dev line then says `"stopped": "patience"`.

    `job.labels` (task, pretraining run, words, sample, seed...) and the task's number of
    training examples are copied into every line, so each log describes itself and the
    report needs nothing but the files. With `best_model_dir`, the pipeline of the best
    epoch (on the task's primary dev metric, with the optimizer's parameter averages) is
    saved there. A multi-task job follows every task batch with a batch of the LMAO
    objective on unlabelled text. `job.textcat` picks the text classifier (TEXTCAT_MODELS).

    The run's state after each epoch is kept in `state_path` (default: beside `out_path`),
    so a killed run continues where it stopped. With `job.pause_after`, the run is a stage
    of a halving search: it trains up to that epoch, writes those epochs' lines (no test
    line) and leaves its state for the run that continues it (pass it the same
    `state_path`); its lines are exactly the first lines of the whole run's log.
    """
    encoder = job.encoder or EncoderSettings()  # bag-of-words: no encoder is built
    if inputs.checkpoint is not None:
        check_checkpoint(inputs.checkpoint, encoder)
    hp = dict(job.hyperparameters)
    hp["batch_words"] = batch_words_for(hp, train_words(inputs.task / "train.spacy"))
    labels = {**job.labels, "n_train": train_size(inputs.task)} if job.labels else {}
    labels["batch_words"] = hp["batch_words"]
    config = training_config(job.task_type, inputs.task, encoder, hp, job.seed,
                             inputs.checkpoint, inputs.vectors, job.textcat or "reduce")
    schedule = (float(hp["encoder_lr_scale"]), int(hp["freeze_encoder_epochs"]))
    auxiliary = None if job.multitask is None else AuxiliarySettings.from_dict(
        job.multitask, inputs.aux_store, inputs.aux_vectors)
    states = None
    if auxiliary is None:  # (a multi-task run's unlabelled stream is not saved: it restarts)
        read = [p for p in (inputs.task, inputs.checkpoint, inputs.vectors) if p is not None]
        states = EpochStates(state_path or resume_path(out_path), run_fingerprint(
            config, read, {"labels": labels, "hp": hp, "epochs": job.epochs,
                           "patience": job.patience, "best_model": best_model_dir is not None}))
    with using_ops(BlasOps(seed=job.seed)):
        return _train(job.task_type, config, inputs.task, job.seed,
                      (job.epochs, job.patience, job.pause_after),
                      out_path, labels, Path(best_model_dir) if best_model_dir else None,
                      schedule, auxiliary, states)


def _train(task_type: str, config: Config, task_dir: Path, seed: int,
           length: tuple[int, int, int | None], out_path: str | Path, labels: dict[str, Any] | None,
           best_model_dir: Path | None, schedule: tuple[float, int],
           auxiliary: AuxiliarySettings | None = None,
           states: EpochStates | None = None) -> list[dict]:
    encoder_lr_scale, frozen_epochs = schedule
    ops = get_current_ops()  # the models' ops, whose dropout stream a state saves
    epochs, patience, pause_after = length
    last = epochs if pause_after is None else min(pause_after, epochs)
    with corpus_read_once():
        nlp = init_nlp(config)
    install_fast_path(nlp)  # spaCy's tok2vec, computed faster (else its plain forward)
    aux = None if auxiliary is None else AuxiliaryLMAO(
        nlp.get_pipe("tok2vec").model, nlp.vocab, auxiliary, seed)
    training = registry.resolve(nlp.config.interpolate()["training"], schema=ConfigSchemaTraining)
    batcher, dropout = training["batcher"], training["dropout"]
    optimizer = fuse_adam(training["optimizer"])  # thinc's Adam, one pass per parameter
    train = read_examples(nlp, task_dir / "train.spacy")
    dev = read_examples(nlp, task_dir / "dev.spacy")
    rng = random.Random(seed)
    rows: list[dict] = []
    best, best_epoch, best_weights = float("-inf"), 0, b""
    test_path = task_dir / "test.spacy"
    order = list(range(len(train)))  # shuffled in place each epoch, as the examples were
    saved = states.restore(nlp, optimizer, ops, rng) if states is not None else None
    if saved is not None:
        rows, best, best_epoch, best_weights, order = (
            saved[k] for k in ("rows", "best", "best_epoch", "best_weights", "order"))
    first = 1 if not rows else epochs + 1 if "stopped" in rows[-1] else rows[-1]["epoch"] + 1
    with atomic_path(out_path) as tmp, open(tmp, "w", encoding="utf-8") as out:
        out.writelines(json.dumps(row, sort_keys=True) + "\n" for row in rows
                       if row["epoch"] <= last)  # (a state may be past a stage's pause)
        for epoch in range(first, last + 1):
            started = time.perf_counter()
            rng.shuffle(order)
            losses: dict[str, float] = {}
            encoder_optimizer = None if epoch <= frozen_epochs else ScaledOptimizer(
                optimizer, encoder_lr_scale)
            for batch in batcher([train[i] for i in order]):
                nlp.update(batch, drop=dropout, sgd=False, losses=losses)
                if aux is not None:
                    losses["lmao_aux"] = losses.get("lmao_aux", 0.0) + aux.update()
                    aux.finish_update(optimizer)
                apply_gradients(nlp, optimizer, encoder_optimizer)
            with nlp.use_params(optimizer.averages):
                scores = evaluate(task_type, nlp, dev)
                primary = scores[PRIMARY_METRIC[task_type]]
                if primary > best:
                    best, best_epoch = primary, epoch
                    if test_path.exists() or best_model_dir is not None:
                        best_weights = nlp.to_bytes(exclude=["vocab"])
            row = {**(labels or {}), "split": "dev", "epoch": epoch, "scores": scores,
                   "losses": {k: float(v) for k, v in losses.items()},
                   "seconds": time.perf_counter() - started}
            stop = patience > 0 and epoch - best_epoch >= patience and epoch < epochs
            if stop:
                row["stopped"] = "patience"
            out.write(json.dumps(row, sort_keys=True) + "\n")
            out.flush()
            rows.append(row)
            if states is not None:
                states.save(nlp, optimizer, ops, rng, {"rows": rows, "best": best,
                            "best_epoch": best_epoch, "best_weights": best_weights,
                            "order": order})
            if stop:
                break
        if pause_after is not None:  # a stage: the state stays for the stage after it
            return [row for row in rows if row["epoch"] <= last]
        if best_weights:  # the best dev epoch: saved, and scored once on the test split
            nlp.from_bytes(best_weights, exclude=["vocab"])
            if best_model_dir is not None:
                with atomic_dir(best_model_dir) as model_tmp:
                    nlp.to_disk(model_tmp)
            if test_path.exists():
                row = {**(labels or {}), "split": "test", "epoch": best_epoch,
                       "scores": evaluate(task_type, nlp, read_examples(nlp, test_path))}
                out.write(json.dumps(row, sort_keys=True) + "\n")
                rows.append(row)
    if states is not None:
        states.clear()
    return rows
