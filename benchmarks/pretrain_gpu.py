"""Pre-training speed on a GPU: words/s of the lmao engine per width, input and batch size,
and where one batch's time goes.

    python benchmarks/pretrain_gpu.py --store STORE --vectors TABLE [--words 2000000]
        [--widths 96 128] [--batch-words 3000 30000] [--rows all needed] [--profile]

STORE is a token store (`lmao tokenize` or the workflow's `results/<name>/stores/...`),
TABLE a spaCy vector table (the targets, and the static-vector input where it is on).
Each case runs `lmao.pretrain.pretrain` on GPU 0 for --words words; words/s is measured
from the second log entry on, so cupy's kernel compilation at start is left out. `rows`:
`all` computes every row (the GPU default), `needed` only the rows the masked tokens
depend on (the CPU default). With --profile, one case is also timed phase by phase with
the device synchronised between phases (which removes the overlap the plain run has).
Last line: `slowest width-128 case: N words/s`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

HIDDEN = 300


def settings(width: int, batch_words: int, static: bool):
    from lmao.pretrain import PretrainSettings

    return PretrainSettings.from_dict({
        "encoder": {"width": width, "depth": 4, "include_static_vectors": static},
        "hidden_width": HIDDEN, "batch_words": batch_words, "dropout": 0.2,
        "log_every_words": max(batch_words, 100_000), "save_every_words": 10**12,
    })


def measure(store: Path, vectors: Path, width: int, batch_words: int, static: bool,
            needed_rows: bool, words: int) -> dict:
    import cupy

    from lmao.pretrain import pretrain

    with tempfile.TemporaryDirectory() as out:
        cupy.get_default_memory_pool().free_all_blocks()
        started = time.perf_counter()
        pretrain(store, vectors, settings(width, batch_words, static), [words], out,
                 progress=False, gpu_id=0, needed_rows=needed_rows)
        wall = time.perf_counter() - started
        log = [json.loads(line) for line in (Path(out) / "log.jsonl").open()]
    first, last = log[0], log[-1]
    steady = (last["words"] - first["words"]) / (last["elapsed_s"] - first["elapsed_s"])
    return {"words_per_s": steady, "wall_s": wall, "loss": last["loss"],
            "gpu_pool_gb": cupy.get_default_memory_pool().total_bytes() / 1e9}


def profile(store: Path, vectors: Path, width: int, batch_words: int, static: bool,
            needed_rows: bool, batches: int = 60) -> dict[str, float]:
    """Milliseconds per batch in each phase, the device synchronised between phases."""
    import cupy
    from thinc.api import require_gpu

    from lmao.ops import GpuOps, using_ops
    from lmao.pretrain import PretrainInputs, output_of, update_output
    from lmao.pretrain.loop import PretrainRun

    require_gpu(0)
    ops = GpuOps(seed=0)
    sync = cupy.cuda.Device().synchronize
    times: dict[str, float] = {}
    marks: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        sync()
        now = time.perf_counter()
        times[name] = times.get(name, 0.0) + now - since
        return now

    with using_ops(ops):
        run = PretrainRun.build(PretrainInputs(store, vectors),
                                settings(width, batch_words, static), ops, needed_rows)
        embed = run.encoder._embed

        def timed_embed(host_ids):
            mixed, backprop = embed(host_ids)

            def timed_backprop(d_mixed) -> None:
                since = lap("CNN backward", marks["backward"])
                backprop(d_mixed)
                lap("embedding backward", since)

            return mixed, timed_backprop

        run.encoder._embed = timed_embed
        for i in range(batches + 10):
            if i == 10:  # after warm-up (kernel compilation)
                times.clear()
            t = time.perf_counter()
            segments = run.stream.take(batch_words)
            lengths = [len(s) for s in segments]
            host_ids = run.stream.gather(run.store.tokens, segments)
            host_inputs, trained = run.masker(host_ids)
            ids, trained = ops.asarray(host_ids), ops.xp.asarray(trained)
            t = lap("batch on host + copy", t)
            rows, bp_rows = run.encoder.begin_update(host_inputs, lengths, trained)
            t = lap("encoder forward", t)
            d_rows, token_loss, known = update_output(output_of(run.model), run.objective,
                                                      rows, ids, lengths, trained)
            marks["backward"] = lap("head forward + loss + backward", t)
            bp_rows(d_rows)  # laps "CNN backward" and "embedding backward"
            t = time.perf_counter()
            run.model.finish_update(run.optimizer)
            lap("optimizer", t)
    return {name: 1000 * seconds / batches for name, seconds in times.items()}


def profile_layers(store: Path, vectors: Path, width: int, batch_words: int, static: bool,
                   batches: int = 30) -> list[tuple[str, float]]:
    """Milliseconds per batch in the forward and the backward of each leaf layer (summed
    over the layers of one name), the device synchronised around each."""
    import cupy
    from thinc.api import require_gpu

    from lmao.ops import GpuOps, using_ops
    from lmao.pretrain import PretrainInputs
    from lmao.pretrain.loop import PretrainRun

    require_gpu(0)
    ops = GpuOps(seed=0)
    sync = cupy.cuda.Device().synchronize
    times: dict[str, float] = {}

    def now() -> float:
        sync()
        return time.perf_counter()

    def timed(func, name: str):
        def forward(model, X, is_train):
            started = now()
            Y, backprop = func(model, X, is_train=is_train)
            times[f"{name} forward"] = times.get(f"{name} forward", 0.0) + now() - started

            def timed_backprop(dY):
                started = now()
                dX = backprop(dY)
                times[f"{name} backward"] = times.get(f"{name} backward", 0.0) + now() - started
                return dX

            return Y, timed_backprop

        return forward

    with using_ops(ops):
        run = PretrainRun.build(PretrainInputs(store, vectors),
                                settings(width, batch_words, static), ops, needed_rows=False)
        for node in run.model.walk():
            if not node.layers:
                node._func = timed(node._func, node.name)
        for i in range(batches + 5):
            if i == 5:
                times.clear()
            run.step(batch_words)
    ranked = sorted(times.items(), key=lambda item: -item[1])
    return [(name, 1000 * seconds / batches) for name, seconds in ranked]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--vectors", type=Path, required=True)
    parser.add_argument("--words", type=int, default=2_000_000)
    parser.add_argument("--widths", type=int, nargs="+", default=[96, 128])
    parser.add_argument("--batch-words", type=int, nargs="+", default=[3000, 30000, 100000])
    parser.add_argument("--rows", nargs="+", default=["all", "needed"],
                        choices=["all", "needed"])
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--layers", action="store_true",
                        help="only time each layer (width 128, static vectors on)")
    args = parser.parse_args()
    import cupy

    if args.layers:
        for batch_words in args.batch_words:
            print(f"layers, width 128, static vectors on, batch {batch_words:,} (ms per batch, "
                  "synchronised): " + ", ".join(
                      f"{name} {ms:.2f}" for name, ms in profile_layers(
                          args.store, args.vectors, 128, batch_words, True)), flush=True)
        return

    device = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    print(f"device: {device}")
    slowest_128 = float("inf")
    for static in (False, True):
        for width in args.widths:
            for batch_words in args.batch_words:
                for rows in args.rows:
                    if rows == "needed" and batch_words != min(args.batch_words):
                        continue  # where it could pay: small batches
                    r = measure(args.store, args.vectors, width, batch_words, static,
                                rows == "needed", args.words)
                    print(f"width {width:4d}  static vectors {'on ' if static else 'off'}  "
                          f"batch {batch_words:>6,}  rows {rows:6s}  "
                          f"{r['words_per_s']:>11,.0f} words/s  loss {r['loss']:.4f}  "
                          f"GPU pool {r['gpu_pool_gb']:.2f} GB", flush=True)
                    if width == 128 and rows == "all":
                        slowest_128 = min(slowest_128, r["words_per_s"])
    if args.profile:
        for batch_words in args.batch_words:
            phases = profile(args.store, args.vectors, 128, batch_words, True, False)
            print(f"profile, width 128, static vectors on, batch {batch_words:,}, rows all "
                  f"(ms per batch, synchronised): " + ", ".join(
                      f"{name} {ms:.2f}" for name, ms in phases.items()), flush=True)
    print(f"slowest width-128 case: {slowest_128:,.0f} words/s")


if __name__ == "__main__":
    main()
