"""Pre-training speed: `spacy pretrain` against our engine, same model, text and batches.

Both train the same tok2vec (spacy.Tok2Vec.v2, MultiHashEmbed rows 5000/1000/2500/2500, a
MaxoutWindowEncoder of the given width and depth 4) with spaCy's vectors objective head
(Maxout 300 × 3 pieces + Linear), cosine loss, batches of ~3000 words, on the same text
and the same target vectors. spaCy runs its own `pretrain` function (what `spacy pretrain`
calls), instrumented only to time each update and record the loss of the tokens that
train (the 15% masked ones with a target vector; our engine logs the same); ours runs
`lmao.pretrain.pretrain` on the token store of the same text (tokenizing once is the point
of the store, so its one-off cost is printed separately). Each engine runs in its own
process so its peak memory is its own.

    python benchmarks/pretrain_speed.py [--words 200000] [--widths 96 128]
        [--inputs plain static] [--threads default one]

Cases: each width, without and with static vectors in the input (the target table, as
the study did), each engine at its default threads and with both held to one thread
(OMP/OpenBLAS/MKL threads = 1). Last line: `speedup <ours/spacy>`, the smallest over the
cases at default threads.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LMAO_SHARED_DATA", REPO.parent / "shared" / "data"))
HIDDEN = 300


def texts(max_words: int) -> list[str]:
    """IMDB unlabelled reviews (never test) if present, else the demo text.

    Only documents spaCy's pretraining corpus reader keeps (5 ≤ tokens < 500), so both
    engines see exactly the same words in the same order.
    """
    import spacy

    from lmao.sources import iter_texts

    tokenizer = spacy.blank("en").tokenizer

    imdb = SHARED / "imdb"
    if imdb.exists():
        sources = [{"type": "jsonl", "path": str(imdb / f"{s}.jsonl.gz")} for s in ("unsup",)]
    else:
        sources = [{"type": "gensim_wiki"}]
    out, words = [], 0
    for source in sources:
        for text in iter_texts(source):
            if not 5 <= len(tokenizer(text)) < 500:
                continue
            out.append(text)
            words += len(text.split())
            if words >= max_words:
                return out
    return out


def prepare(workdir: Path, max_words: int) -> dict:
    from lmao.store import build_store
    from lmao.vectors import read_glove_text, save_table

    docs = texts(max_words)
    with open(workdir / "text.jsonl", "w", encoding="utf-8") as out:
        for text in docs:
            out.write(json.dumps({"text": text}) + "\n")
    started = time.perf_counter()
    meta = build_store(docs, workdir / "store")
    tokenize_s = time.perf_counter() - started
    glove = SHARED / "glove" / "glove.6B.50d.top100k.txt.gz"
    if glove.exists():
        words, matrix = read_glove_text(glove)
        save_table(words, matrix, workdir / "vectors")
    else:
        from lmao.store import TokenStore
        from lmao.vector_models import train_floret_table

        train_floret_table(TokenStore(workdir / "store"), workdir / "vectors", dim=50)
    return {"store_words": meta["n_words"], "tokenize_s": tokenize_s,
            "tokenize_words_per_s": meta["n_words"] / tokenize_s}


def spacy_config(workdir: Path, width: int, batch_words: int, static: bool):
    from spacy.language import DEFAULT_CONFIG_PRETRAIN_PATH
    from spacy.util import load_config, load_model_from_config

    from lmao.finetune import training_config
    from lmao.settings import EncoderSettings

    encoder = EncoderSettings(width=width, depth=4, include_static_vectors=static)
    config = training_config("textcat", workdir, encoder, {}, seed=0,
                             vectors=workdir / "vectors")
    config["nlp"]["pipeline"] = ["tok2vec"]
    del config["components"]["textcat"]
    del config["pretraining"]
    config = load_model_from_config(config, auto_fill=True).config  # as `init fill-config`
    pretraining = load_config(DEFAULT_CONFIG_PRETRAIN_PATH)["pretraining"]
    pretraining.update({
        "max_epochs": 1, "dropout": 0.2, "n_save_every": None, "n_save_epoch": None,
        "component": "tok2vec", "layer": "", "corpus": "corpora.pretrain",
    })
    pretraining["objective"] = {"@architectures": "spacy.PretrainVectors.v1",
                                "maxout_pieces": 3, "hidden_size": HIDDEN, "loss": "cosine"}
    pretraining["batcher"] = {"@batchers": "spacy.batch_by_words.v1", "size": batch_words,
                              "tolerance": 0.2, "discard_oversize": False, "get_length": None}
    pretraining["optimizer"] = {"@optimizers": "Adam.v1", "beta1": 0.9, "beta2": 0.999,
                                "L2_is_weight_decay": True, "L2": 0.01, "grad_clip": 1.0,
                                "use_averages": True, "eps": 1e-8, "learn_rate": 0.001}
    config["pretraining"] = pretraining
    config["corpora"]["pretrain"] = {"@readers": "spacy.JsonlCorpus.v1",
                                     "path": str(workdir / "text.jsonl"), "min_length": 5,
                                     "max_length": 500, "limit": 0}
    return config.interpolate()


def run_spacy(workdir: Path, width: int, batch_words: int, static: bool) -> dict:
    import spacy.ml.models.multi_task as multi_task
    import spacy.training.pretrain as spacy_pretrain

    records, masks = [], []
    apply_mask = multi_task._apply_mask

    def recording_mask(docs, random_words, mask_prob=0.15):
        mask, masked_docs = apply_mask(docs, random_words, mask_prob=mask_prob)
        masks.append(mask)  # True: the token is kept as is and sends no gradient
        return mask, masked_docs

    def timed_update(model, docs, optimizer, objective_func):
        started = time.perf_counter()  # make_update's four lines, timed
        predictions, backprop = model.begin_update(docs)
        loss, gradients = objective_func(model.ops, docs, predictions)
        backprop(gradients)
        model.finish_update(optimizer)
        ended = time.perf_counter()
        loss_sum, n_known = _trained_cosine_loss(docs, predictions, ~masks[-1])
        records.append((started, ended, sum(len(d) for d in docs), loss_sum, n_known))
        return float(loss)

    multi_task._apply_mask = recording_mask
    spacy_pretrain.make_update = timed_update
    out = Path(tempfile.mkdtemp(dir=workdir))
    spacy_pretrain.pretrain(spacy_config(workdir, width, batch_words, static), out, silent=True)
    words = sum(r[2] for r in records)
    seconds = records[-1][1] - records[0][0]
    return {"words": words, "words_per_s": words / seconds, "seconds": seconds,
            "trained_loss": _trained_loss([r[2:] for r in records])}


def _trained_cosine_loss(docs, predictions, trained) -> tuple[float, int]:
    """Summed cosine loss over the masked tokens whose exact form has a vector (the tokens
    that train), and their number: what our engine logs."""
    import numpy
    from spacy.attrs import ID
    from spacy.util import OOV_RANK

    rows = numpy.concatenate([doc.to_array(ID).ravel() for doc in docs])  # as spaCy's loss
    chosen = trained & (rows != OOV_RANK)
    target = docs[0].vocab.vectors.data[rows[chosen]]
    guess = numpy.asarray(predictions)[chosen]
    cosine = (guess * target).sum(1) / (numpy.linalg.norm(guess, axis=1)
                                        * numpy.linalg.norm(target, axis=1) + 1e-8)
    return float((1.0 - cosine).sum()), int(chosen.sum())


def run_ours(workdir: Path, width: int, batch_words: int, words: int, static: bool) -> dict:
    from lmao.pretrain import PretrainSettings, pretrain

    settings = PretrainSettings.from_dict({
        "encoder": {"width": width, "depth": 4, "include_static_vectors": static},
        "hidden_width": HIDDEN, "loss": "cosine",
        "batch_words": batch_words, "learn_rate": 0.001, "dropout": 0.2, "shuffle": False,
        "log_every_words": batch_words * 5, "save_every_words": 10**12,
        "target_lookup": "exact",  # as spaCy: tokens whose exact form has no vector: no target
    })
    out = Path(tempfile.mkdtemp(dir=workdir))
    pretrain(workdir / "store", workdir / "vectors", settings, [words], out, progress=False)
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return {"words": words, "words_per_s": log[-1]["words_per_s"],
            "seconds": log[-1]["elapsed_s"],
            "trained_loss": _trained_loss([(r["interval_words"], r["loss_sum"], r["known_words"])
                                           for r in log])}


def _trained_loss(records: list[tuple[int, float, int]]) -> dict:
    """Mean cosine loss per trained token (masked, with a target vector), overall and over
    the last 20% of the words, from (words, summed loss, trained tokens) per interval."""
    total_words = sum(r[0] for r in records)
    seen, tail_loss, tail_n = 0, 0.0, 0
    for words, loss, n in records:
        seen += words
        if seen > 0.8 * total_words:
            tail_loss += loss
            tail_n += n
    return {"all": sum(r[1] for r in records) / max(sum(r[2] for r in records), 1),
            "last_20pct": tail_loss / max(tail_n, 1)}


def child(args: argparse.Namespace) -> None:
    workdir = Path(args.workdir)
    if args.engine == "spacy":
        result = run_spacy(workdir, args.width, args.batch_words, args.static)
    else:
        result = run_ours(workdir, args.width, args.batch_words, args.words, args.static)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                      "MKL_NUM_THREADS", "BLIS_NUM_THREADS")}


def in_child(engine: str, workdir: Path, width: int, batch_words: int, words: int,
             static: bool, one_thread: bool) -> dict:
    command = [sys.executable, __file__, "--child", engine, "--workdir", str(workdir),
               "--width", str(width), "--batch-words", str(batch_words), "--words", str(words),
               *(["--static"] if static else [])]
    env = {**os.environ, **(ONE_THREAD if one_thread else {})}
    output = subprocess.run(command, check=True, capture_output=True, text=True,
                            env=env).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=200_000)
    parser.add_argument("--widths", type=int, nargs="+", default=[96, 128])
    parser.add_argument("--batch-words", type=int, default=3000)
    parser.add_argument("--inputs", nargs="+", default=["plain", "static"],
                        choices=["plain", "static"])
    parser.add_argument("--threads", nargs="+", default=["default", "one"],
                        choices=["default", "one"])
    parser.add_argument("--static", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=["spacy", "ours"])
    parser.add_argument("--workdir")
    parser.add_argument("--width", type=int)
    args = parser.parse_args()
    if args.child:
        args.engine = args.child
        child(args)
        return
    print(f"machine: {os.cpu_count()} cores; {sys.version.split()[0]}")
    speedups = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        prep = prepare(workdir, args.words)
        print(f"token store: {prep['store_words']:,} words tokenized once in "
              f"{prep['tokenize_s']:.1f} s ({prep['tokenize_words_per_s']:,.0f} words/s)")
        for threads in args.threads:
            for inputs in args.inputs:
                for width in args.widths:
                    case = f"width {width:4d}  {inputs:6s} {threads:7s} threads"
                    static, one = inputs == "static", threads == "one"
                    spacy_result = in_child("spacy", workdir, width, args.batch_words, 0,
                                            static, one)
                    ours = in_child("ours", workdir, width, args.batch_words,
                                    spacy_result["words"], static, one)
                    speedup = ours["words_per_s"] / spacy_result["words_per_s"]
                    if threads == "default" or "default" not in args.threads:
                        speedups.append(speedup)
                    for name, r in (("spacy pretrain", spacy_result), ("lmao engine", ours)):
                        loss = r["trained_loss"]
                        print(f"{case}  {name:15s} {r['words']:>9,} words "
                              f"{r['words_per_s']:>9,.0f} words/s  masked loss "
                              f"{loss['all']:.4f} (last 20%: {loss['last_20pct']:.4f})  "
                              f"peak RSS {r['peak_rss_mb']:,.0f} MB", flush=True)
                    print(f"{case}  speedup {speedup:.2f}", flush=True)
    print(f"speedup {min(speedups):.2f}")


if __name__ == "__main__":
    main()
