"""Fine-tuning speed: spaCy's own ops, today's path and the fast path, side by side.

The same pipeline (`lmao.finetune.training_config`: the study's encoder, width 128, depth
4, rows [5000, 1000, 2500, 2500], GloVe 6B 50d static vectors in the input), the same
initial weights (the same seed; each path prints a digest of them), the same data and the
same batches, one epoch of training and one evaluation on dev, three ways:

- `spacy`: thinc's NumpyOps, what `spacy train` uses on a CPU (blis products, float64
  dropout draws);
- `today`: our `finetune` code path before the fast path: spaCy's components on
  `lmao.ops.BlasOps`;
- `fast`: the same on `BlasOps` with `lmao.fast_finetune` installed on the tok2vec and
  thinc's Adam stepping through `lmao.fused_adam` (what `lmao.finetune.finetune` runs by
  default).

Cases: (a) IMDB-1k text classification (the study's 1,000 training reviews; dev: the last
reviews of the study's dev split), textcat "reduce"; (b) CoNLL-2003 NER; (c) UD English EWT
tagging + parsing. Each (case, path) runs in its own process (so peak RSS is its own),
with `--threads` BLAS threads (default 1: what the `finetune` rule gives a job);
`--jobs N` runs N copies of each at once, as `snakemake --cores N` runs N fine-tunes side
by side on a machine, and reports their means (the copies share the memory bus and the
caches, as a grid's jobs do).

    python benchmarks/finetune_speed.py                      # the default sizes (minutes)
    python benchmarks/finetune_speed.py --words 20000 --dev-words 5000   # ~a minute
    python benchmarks/finetune_speed.py --cases ner --paths today fast
    python benchmarks/finetune_speed.py --jobs 2       # two of each at once, as a grid runs

Per case and path: training and evaluation words/s, the epoch's seconds (training +
evaluation), the encoder's share (tok2vec forward and backward: its seconds and the
GFLOP/s its matrix products reach, against a numpy float32 product of the encoder's size
measured on this machine), peak RSS, the loss and the dev score after the epoch, where
the training time goes (exclusive seconds per region: encoder, each parser's model forward
and backward, tagger, examples, optimizer, batching, the rest: the transition system and
oracle); then
`speedup` lines against spaCy's own; the LAST line is `speedup X`, the smallest epoch
speedup of the fast path over the cases.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("LMAO_SHARED_DATA", REPO.parent / "shared" / "data"))
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "BLIS_NUM_THREADS")

CASES = {  # name: (task type, task spec for lmao.tasks.build_task, default training words)
    "textcat": ("textcat", {
        "type": "textcat",
        "source": {"type": "jsonl", "path": str(SHARED / "imdb" / "train.jsonl.gz"),
                   "strip_html": True},
        # the study's IMDB-1k split (seed 0, 1,000 training reviews); dev: the last 1,000
        # of the study's 10,000 dev reviews; one test review (unused)
        "split": {"seed": 0, "n_train": 1000, "n_dev": 1000, "n_test": 1}}, 0),
    "ner": ("ner", {"type": "ner", "source": {
        "format": "conll2003", "train": str(SHARED / "conll2003" / "eng.train.gz"),
        "dev": str(SHARED / "conll2003" / "eng.testa.gz"),
        "test": str(SHARED / "conll2003" / "eng.testb.gz")}}, 100_000),
    "ud": ("ud", {"type": "ud", "source": {
        "format": "conllu",
        "train": str(SHARED / "ud_english_ewt" / "en_ewt-ud-train.conllu.gz"),
        "dev": str(SHARED / "ud_english_ewt" / "en_ewt-ud-dev.conllu.gz"),
        "test": str(SHARED / "ud_english_ewt" / "en_ewt-ud-test.conllu.gz")}}, 60_000),
}
PATHS = ("spacy", "today", "fast")
DEFAULT_DEV_WORDS = {"textcat": 100_000, "ner": 25_000, "ud": 25_000}


# ---------------------------------------------------------------- the data, built once


def prepare(work: Path, case: str, words: int | None, dev_words: int | None) -> Path:
    """The case's task folder, its training and dev splits cut to the first `words` and
    `dev_words` tokens (whole documents; 0: all), built once under `work`."""
    from spacy.tokens import DocBin
    from spacy.vocab import Vocab

    from lmao.tasks import build_task

    full = work / "tasks" / case
    if not (full / "meta.json").exists():
        build_task(CASES[case][1], full)
    cut = work / "cut" / f"{case}-{words}-{dev_words}"
    if (cut / "meta.json").exists():
        return cut
    cut.mkdir(parents=True, exist_ok=True)
    meta = json.loads((full / "meta.json").read_text())
    for split, limit in (("train", words), ("dev", dev_words)):
        docs = list(DocBin().from_disk(full / f"{split}.spacy").get_docs(Vocab()))
        kept, total = [], 0
        for doc in docs:
            if limit and total >= limit:
                break
            kept.append(doc)
            total += len(doc)
        DocBin(store_user_data=True, docs=kept).to_disk(cut / f"{split}.spacy")
        meta.setdefault("sizes", {})[split] = len(kept)
    (cut / "meta.json").write_text(json.dumps(meta))
    return cut


def glove_table(work: Path) -> Path:
    from lmao.vectors import read_glove_text, save_table

    out = work / "vectors" / "glove50"
    if not (out / "meta.json").exists() and not (out / "config.cfg").exists():
        words, matrix = read_glove_text(SHARED / "glove" / "glove.6B.50d.top100k.txt.gz")
        save_table(words, matrix, out)
    return out


def gemm_rate(rows: int = 8192, width: int = 384, repeats: int = 20) -> float:
    """GFLOP/s of a numpy float32 product of the encoder's window-layer size
    (rows × 3·128 by 3·128 × 3·128), best of `repeats`."""
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.random((rows, width), dtype=np.float32)
    b = rng.random((width, width), dtype=np.float32)
    out = np.empty((rows, width), dtype=np.float32)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2 * rows * width * width / best / 1e9


# ---------------------------------------------------------------- one path, one process


class Regions:
    """Exclusive seconds per named region of the training loop: a region's time without
    the regions nested in it (the encoder's backward runs inside the parser's backward,
    the parser's model inside its update...), so the regions and "the rest" add up to
    the epoch's training seconds."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.stack: list[float] = []
        self.active = True

    def timed(self, name: str, fn, *args, **kwargs):
        if not self.active:
            return fn(*args, **kwargs)
        self.stack.append(0.0)
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - start
            nested = self.stack.pop()
            self.seconds[name] = self.seconds.get(name, 0.0) + elapsed - nested
            if self.stack:
                self.stack[-1] += elapsed

    def wrap(self, name: str, fn):
        def timed(*args, **kwargs):
            return self.timed(name, fn, *args, **kwargs)

        return timed


class EncoderTimer:
    """Times the tok2vec model's forward (training and prediction) and backward passes, and
    counts the floating-point operations of their matrix products."""

    def __init__(self, model, fast: bool, regions: Regions | None = None):
        self.fast, self.seconds = fast, {"forward": 0.0, "backward": 0.0, "predict": 0.0}
        self.flops = {"forward": 0.0, "backward": 0.0, "predict": 0.0}
        self.inner = model._func
        self.regions = regions or Regions()
        model._func = self

    def __call__(self, model, docs, is_train):
        start = time.perf_counter()
        out, backprop = self.regions.timed("encoder", self.inner, model, docs, is_train)
        key = "forward" if is_train else "predict"
        self.seconds[key] += time.perf_counter() - start
        flops = self.regions.timed("the benchmark's FLOP counting", encoder_flops, model,
                                   docs, self.fast)
        self.flops[key] += flops

        def timed_backprop(d_out):
            start = time.perf_counter()
            d_in = self.regions.timed("encoder", backprop, d_out)
            self.seconds["backward"] += time.perf_counter() - start
            self.flops["backward"] += 2 * flops
            return d_in

        return out, timed_backprop


def time_regions(nlp, regions: Regions) -> None:
    """Wrap what one training step runs, outside the encoder, in timed regions: each
    transition-based model's forward (the lower layer's precomputation per batch, then per
    step the state features, maxout and upper layer) and backward (per step the upper
    layer and maxout; per batch the lower layer and the tokens' gradients), the tagger's
    model and its loss, spaCy's copies of the examples and their alignments. (What is
    left inside `nlp.update` is the components' own Python and Cython: for a parser its
    transition system, oracle (`init_gold_batch`, `set_costs`) and loss.)"""
    import spacy.language
    from spacy.training.alignment import Alignment
    from thinc.loss import SequenceCategoricalCrossentropy

    for name, proc in nlp.pipeline:
        model = getattr(proc, "model", None)
        if model is None or model in (True, False):
            continue
        if model.name == "parser_model":
            model._func = _timed_parser_forward(model._func, regions, name)
        elif name == "tagger":
            forward = model._func

            def tagger_forward(model, X, is_train, forward=forward):
                Y, backprop = regions.timed("tagger model", forward, model, X, is_train)
                return Y, regions.wrap("tagger model", backprop)

            model._func = tagger_forward
    SequenceCategoricalCrossentropy.__call__ = regions.wrap(
        "tagger loss", SequenceCategoricalCrossentropy.__call__)
    spacy.language._copy_examples = regions.wrap("examples", spacy.language._copy_examples)
    Alignment.from_strings = classmethod(regions.wrap(
        "examples", Alignment.from_strings.__func__))


def _timed_parser_forward(inner, regions: Regions, name: str):
    forward_name, backward_name = f"{name} model forward", f"{name} model backward"

    def forward(model, docs, is_train):
        step_model, finish = regions.timed(forward_name, inner, model, docs, is_train)
        if not is_train:
            return step_model, finish
        step = step_model._func

        def timed_step(m, states, is_train):
            scores, backprop = regions.timed(forward_name, step, m, states, is_train)
            return scores, regions.wrap(backward_name, backprop)

        step_model._func = timed_step
        return step_model, regions.wrap(backward_name, finish)

    forward.__wrapped__ = inner  # the fast path still sees its parser forward inside
    return forward


def encoder_flops(model, docs, fast: bool) -> float:
    """Multiply-adds × 2 of the tok2vec's matrix products in one forward pass: the static
    vectors' projection and the embedding's maxout per token (per distinct word on the fast
    path) and each window layer's maxout on every row of spaCy's padded layout. (A backward
    pass is counted as twice its forward.)"""
    import numpy as np
    from spacy.attrs import ORTH

    embed, encode = model.get_ref("embed"), model.get_ref("encode")
    width = encode.get_dim("nO")
    lengths = [len(doc) for doc in docs if len(doc)]
    rows = distinct = sum(lengths)
    if fast and rows:
        distinct = len(np.unique(np.concatenate([doc.to_array([ORTH]) for doc in docs
                                                 if len(doc)])))
    flops = 0.0
    for node in embed.walk():
        if node.name == "static_vectors":
            flops += 2.0 * distinct * node.get_param("W").shape[1] * node.get_dim("nO")
        elif node.name == "maxout" and node.has_dim("nP"):
            flops += 2.0 * distinct * node.get_dim("nI") * node.get_dim("nO") * node.get_dim("nP")
    padded = rows + encode.attrs.get("pad", 0) * (len(lengths) + 1) if lengths else 0
    for node in encode.walk():
        if node.name == "maxout" and node.has_dim("nP"):
            flops += 2.0 * padded * node.get_dim("nI") * width * node.get_dim("nP")
    return flops


def weights_digest(nlp) -> str:
    digest = hashlib.sha256()
    for _, proc in nlp.pipeline:
        model = getattr(proc, "model", None)
        if model is None or model in (True, False):
            continue
        for node in model.walk():
            for name in node.param_names:
                if node.has_param(name):
                    digest.update(node.get_param(name).tobytes())
    return digest.hexdigest()[:12]


def run_path(case: str, path: str, task_dir: Path, vectors: Path, seed: int,
             batch_words: int) -> dict:
    import random
    import resource

    from spacy.schemas import ConfigSchemaTraining
    from spacy.training.initialize import init_nlp
    from spacy.util import registry
    from thinc.api import NumpyOps

    from lmao.finetune import (
        ScaledOptimizer,
        apply_gradients,
        evaluate,
        read_examples,
        training_config,
    )
    from lmao.grid import PRIMARY_METRIC
    from lmao.ops import BlasOps, using_ops
    from lmao.settings import DEFAULT_HYPERPARAMETERS, EncoderSettings

    task_type = CASES[case][0]
    encoder = EncoderSettings(width=128, depth=4, rows=[5000, 1000, 2500, 2500],
                              include_static_vectors=True)
    hp = {**DEFAULT_HYPERPARAMETERS, "batch_words": batch_words}
    config = training_config(task_type, task_dir, encoder, hp, seed, None, vectors)
    ops = NumpyOps() if path == "spacy" else BlasOps(seed=seed)
    started = time.perf_counter()
    with using_ops(ops):
        nlp = init_nlp(config)
        digest = weights_digest(nlp)
        tok2vec = nlp.get_pipe("tok2vec").model
        note = None
        if path == "fast":
            from lmao.fast_finetune import install_fast_path

            note = install_fast_path(nlp)
        regions = Regions()
        timer = EncoderTimer(tok2vec, fast=path == "fast" and note is None, regions=regions)
        time_regions(nlp, regions)
        training = registry.resolve(nlp.config.interpolate()["training"],
                                    schema=ConfigSchemaTraining)
        optimizer, batcher, dropout = (training[k] for k in ("optimizer", "batcher", "dropout"))
        if path == "fast":
            from lmao.fused_adam import fuse_adam

            fuse_adam(optimizer)
        train = read_examples(nlp, task_dir / "train.spacy")
        dev = read_examples(nlp, task_dir / "dev.spacy")
        setup = time.perf_counter() - started
        order = list(range(len(train)))
        random.Random(seed).shuffle(order)
        losses: dict[str, float] = {}
        start = time.perf_counter()
        batches = iter(batcher([train[i] for i in order]))
        while True:
            try:
                batch = regions.timed("batching", next, batches)
            except StopIteration:
                break
            nlp.update(batch, drop=dropout, sgd=False, losses=losses)
            regions.timed("optimizer", apply_gradients, nlp, optimizer,
                          ScaledOptimizer(optimizer, 1.0))
        train_s = time.perf_counter() - start
        regions.active = False
        start = time.perf_counter()
        with nlp.use_params(optimizer.averages):
            scores = evaluate(task_type, nlp, dev)
        eval_s = time.perf_counter() - start
    train_words = sum(len(eg.reference) for eg in train)
    dev_words = sum(len(eg.reference) for eg in dev)
    return {
        "case": case, "path": path, "weights": digest, "note": note,
        "train_words": train_words, "dev_words": dev_words, "setup_s": setup,
        "train_s": train_s, "eval_s": eval_s, "epoch_s": train_s + eval_s,
        "encoder_s": dict(timer.seconds), "encoder_flops": dict(timer.flops),
        "regions_s": dict(regions.seconds),
        "loss": {k: float(v) for k, v in losses.items()},
        "score": {PRIMARY_METRIC[task_type]: scores[PRIMARY_METRIC[task_type]], **scores},
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


# ---------------------------------------------------------------- the report


def report(results: list[dict], rate: float) -> list[str]:
    lines = []
    by = {(r["case"], r["path"]): r for r in results}
    smallest = None
    for case in dict.fromkeys(r["case"] for r in results):
        for path in PATHS:
            r = by.get((case, path))
            if r is None:
                continue
            enc = r["encoder_s"]
            train_enc = enc["forward"] + enc["backward"]
            train_flops = r["encoder_flops"]["forward"] + r["encoder_flops"]["backward"]
            gflops_train = train_flops / max(train_enc, 1e-9) / 1e9
            gflops_pred = r["encoder_flops"]["predict"] / max(enc["predict"], 1e-9) / 1e9
            score = next(iter(r["score"].items()))
            lines.append(
                f"{case} {path}: train {r['train_words'] / r['train_s']:,.0f} words/s, "
                f"eval {r['dev_words'] / r['eval_s']:,.0f} words/s, epoch {r['epoch_s']:.2f} s "
                f"(train {r['train_s']:.2f} + eval {r['eval_s']:.2f}), peak RSS "
                f"{r['peak_rss_mb']:,.0f} MB, loss "
                + ", ".join(f"{k} {v:.3f}" for k, v in r["loss"].items())
                + f", dev {score[0]} {score[1]:.4f}; weights {r['weights']}")
            lines.append(
                f"{case} {path} breakdown: training: encoder forward {enc['forward']:.2f} s + "
                f"backward {enc['backward']:.2f} s ({gflops_train:.1f} GFLOP/s, "
                f"{gflops_train / rate:.0%} of the gemm rate), the rest "
                f"{r['train_s'] - train_enc:.2f} s; evaluation: encoder {enc['predict']:.2f} s "
                f"({gflops_pred:.1f} GFLOP/s, {gflops_pred / rate:.0%}), the rest "
                f"{r['eval_s'] - enc['predict']:.2f} s"
                + (f"; note: {r['note']}" if r.get("note") else ""))
            if r.get("regions_s"):
                lines.append(f"{case} {path} training time: " + where_time_goes(r))
        base = by.get((case, "spacy"))
        for path in ("today", "fast"):
            r = by.get((case, path))
            if base is None or r is None:
                continue
            epoch = base["epoch_s"] / r["epoch_s"]
            lines.append(f"speedup {case} {path}: epoch {epoch:.2f}x (train "
                         f"{base['train_s'] / r['train_s']:.2f}x, eval "
                         f"{base['eval_s'] / r['eval_s']:.2f}x) over spaCy's own")
            if path == "fast":
                smallest = epoch if smallest is None else min(smallest, epoch)
    if smallest is not None:
        lines.append(f"speedup {smallest:.2f}")
    return lines


def where_time_goes(r: dict) -> str:
    """The training epoch's seconds by region (exclusive: they add up to the epoch),
    largest first; "the rest" is what no region covers: inside `nlp.update`, the
    components' own code (for a parser: its transition system, oracle and loss)."""
    regions = dict(r["regions_s"])
    parts = sorted(regions.items(), key=lambda item: -item[1])
    rest = r["train_s"] - sum(regions.values())
    parsers = [k[: -len(" model forward")] for k in regions if k.endswith(" model forward")]
    label = "the rest" if not parsers else (
        f"the rest ({'/'.join(parsers)}: transition system, oracle, loss; spaCy's loop)")
    return ", ".join(f"{name} {seconds:.2f} s" for name, seconds in parts) + (
        f", {label} {rest:.2f} s (of {r['train_s']:.2f} s)")


def run_copies(command: list[str], env: dict, jobs: int, label: str) -> dict:
    """Run `jobs` copies of one (case, path) child at once; their result, the timings the
    mean over the copies (the copies compute the same thing: same weights, same scores)."""
    children = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(jobs)]
    results = []
    for child in children:
        stdout, stderr = child.communicate()
        line = [x for x in stdout.splitlines() if x.startswith("RESULT ")]
        if child.returncode != 0 or not line:
            sys.exit(f"{label} failed:\n{stdout}\n{stderr}")
        results.append(json.loads(line[-1][len("RESULT "):]))
    first = results[0]
    if any(r["score"] != first["score"] or r["weights"] != first["weights"] for r in results):
        sys.exit(f"{label}: the copies disagree: {[r['score'] for r in results]}")

    def mean(values):
        return sum(values) / len(values)

    merged = dict(first)
    for key in ("setup_s", "train_s", "eval_s", "epoch_s"):
        merged[key] = mean([r[key] for r in results])
    for key in ("encoder_s", "encoder_flops", "regions_s"):
        merged[key] = {k: mean([r[key][k] for r in results]) for k in first[key]}
    merged["peak_rss_mb"] = max(r["peak_rss_mb"] for r in results)
    return merged


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--paths", nargs="+", default=list(PATHS), choices=PATHS)
    parser.add_argument("--words", type=int, default=None,
                        help="training words per case (default: textcat all 1,000 reviews, "
                        "NER 100,000, UD 60,000; 0: the whole training split)")
    parser.add_argument("--dev-words", type=int, default=None,
                        help="dev words per case (default: textcat 100,000, NER and UD 25,000)")
    parser.add_argument("--batch-words", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS threads per path (default 1, as the finetune rule gives a job)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="copies of each (case, path) run at once, as `snakemake --cores "
                        "N` runs N fine-tunes side by side (default 1); figures are their "
                        "means")
    parser.add_argument("--repeats", type=int, default=1,
                        help="run each (case, path) this many times and keep its fastest "
                        "epoch (this machine's run-to-run spread is ~±15%%)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path(os.environ.get(
        "LMAO_BENCH_DIR", "/tmp/lmao-finetune-speed")),
        help="where the tasks and the vectors table are built once (never in the repo)")
    parser.add_argument("--child", nargs=4, metavar=("CASE", "PATH", "TASK_DIR", "VECTORS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        case, path, task_dir, vectors = args.child
        result = run_path(case, path, Path(task_dir), Path(vectors), args.seed,
                          args.batch_words)
        print("RESULT " + json.dumps(result), flush=True)
        return
    env = {**os.environ, **{var: str(args.threads) for var in THREAD_VARS}}
    for var in THREAD_VARS:
        os.environ[var] = str(args.threads)
    rate = gemm_rate()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"threads per path {args.threads}, {args.jobs} at once, best of "
          f"{args.repeats}; numpy float32 gemm 8192x384 . 384x384: "
          f"{rate:.1f} GFLOP/s", flush=True)
    with open("/proc/loadavg") as f:
        print(f"load average before: {f.read().strip()}", flush=True)
    vectors = glove_table(args.work)
    results = []
    for case in args.cases:
        words = CASES[case][2] if args.words is None else args.words
        dev_words = DEFAULT_DEV_WORDS[case] if args.dev_words is None else args.dev_words
        task_dir = prepare(args.work, case, words, dev_words)
        for path in args.paths:
            command = [sys.executable, __file__, "--seed", str(args.seed), "--batch-words",
                       str(args.batch_words), "--child", case, path, str(task_dir),
                       str(vectors)]
            runs = [run_copies(command, env, args.jobs, f"{case} {path}")
                    for _ in range(args.repeats)]
            results.append(min(runs, key=lambda r: r["epoch_s"]))
            print(report(results[-1:], rate)[0], flush=True)
    with open("/proc/loadavg") as f:
        print(f"load average after: {f.read().strip()}", flush=True)
    print("---", flush=True)
    for line in report(results, rate):
        print(line, flush=True)


if __name__ == "__main__":
    main()
