"""`lmao`: run any step of the pipeline by hand, with the same functions the rules call."""

from __future__ import annotations

import argparse
import json
import sys
from itertools import chain
from pathlib import Path

from .adopt import AdoptError
from .config import ConfigError, load_config
from .fileio import InputError
from .grid import Experiment
from .pretrain import ChangedSettingsError, Preempted
from .restore import RestoreError


def _experiment(args: argparse.Namespace) -> Experiment:
    return Experiment(load_config(args.config))


def _entry(experiment: Experiment, section: str, name: str) -> dict:
    """`config[section][name]`, or a ConfigError that lists the names there are."""
    entries = experiment.tasks() if section == "tasks" else experiment.config[section]
    if name not in entries:
        raise ConfigError(f"{section}: no entry named {name!r} (have {sorted(entries)})")
    return entries[name]


def cmd_check_config(args: argparse.Namespace) -> None:
    experiment = _experiment(args)
    seeds, samples = len(experiment.config["finetune"]["seeds"]), experiment.n_samples()
    trained = experiment.trained_tasks()
    runs = sum(len(experiment.inits_for(task)) for task in trained)
    print(f"{args.config}: valid; {len(experiment.inits())} inits (references included) × "
          f"{len(trained)} tasks (low-data variants included) × {samples} "
          f"hyper-parameter samples × {seeds} seeds = {runs * samples * seeds} fine-tuning "
          "jobs (a reference only on the tasks it applies to)")


def cmd_tokenize(args: argparse.Namespace) -> None:
    from .sources import iter_texts
    from .store import build_store

    sources = _entry(_experiment(args), "corpora", args.corpus)["sources"]
    meta = build_store(chain.from_iterable(iter_texts(s) for s in sources), args.out,
                       n_process=args.n_process, provenance={"sources": sources})
    print(json.dumps(meta, indent=2))


def cmd_vectors(args: argparse.Namespace) -> None:
    from .store import TokenStore
    from .vector_models import train_floret_table
    from .vectors import read_glove_text, save_table

    if args.text:
        words, matrix = read_glove_text(args.text, args.max_rows)
        save_table(words, matrix, args.out)
        print(f"{len(words)} vectors of width {matrix.shape[1]} → {args.out}")
    else:
        rows = train_floret_table(TokenStore(args.store), args.out, dim=args.dim,
                                  epochs=args.epochs, min_count=args.min_count,
                                  threads=args.threads)
        print(f"{rows} vectors of width {args.dim} → {args.out}")


def cmd_pretrain(args: argparse.Namespace) -> None:
    from .pretrain import pretrain

    experiment = _experiment(args)
    spec = _entry(experiment, "pretrain", args.run)
    paths = pretrain(args.store, args.vectors, experiment.pretrain_settings(args.run),
                     args.words or spec["checkpoints"], args.out,
                     input_vectors_dir=args.input_vectors, gpu_id=args.gpu_id)
    print("\n".join(str(p) for p in paths))


def cmd_task(args: argparse.Namespace) -> None:
    from .tasks import build_task

    print(json.dumps(build_task(_entry(_experiment(args), "tasks", args.task), args.out)))


def cmd_finetune(args: argparse.Namespace) -> None:
    from .finetune import finetune

    experiment = _experiment(args)
    _entry(experiment, "tasks", args.task)
    run = args.run if args.checkpoint else "none"
    if run != "none":
        _entry(experiment, "pretrain", run)
    rows = finetune(experiment.task_type(args.task), args.task_dir, experiment.encoder(run),
                    experiment.config["finetune"].get("hyperparameters", {}), args.seed,
                    args.epochs or experiment.config["finetune"]["epochs"], args.out,
                    init_tok2vec=args.checkpoint, vectors=args.vectors,
                    labels={"task": args.task, "task_type": experiment.task_type(args.task),
                            "pretrain_run": run, "words": args.words, "sample": 0,
                            "seed": args.seed},
                    patience=experiment.config["finetune"]["patience"])
    for row in rows:
        print(json.dumps(row["scores"]))


def cmd_restore(args: argparse.Namespace) -> None:
    from .restore import restore

    restore(args.config, check_dvc=not args.no_dvc_check)
    print(f"{args.config}: restored results recorded as up to date; `snakemake -n "
          f"--configfile {args.config}` now plans only what a later edit changes")


def cmd_adopt(args: argparse.Namespace) -> None:
    from .adopt import adopt

    plan = adopt(args.source, args.config, args.snakefile, dry_run=args.dry_run)
    kinds: dict[str, int] = {}
    for key in plan.copy:
        kinds[key.split("/")[0]] = kinds.get(key.split("/")[0], 0) + 1
    summary = ", ".join(f"{n} {kind}" for kind, n in kinds.items()) or "nothing"
    verb = "would adopt" if args.dry_run else "adopted"
    print(f"{args.config}: {verb} {summary} from {args.source} (the same jobs, finished there)")
    for key in plan.copy:
        print(f"  {key}")
    if plan.record:
        verb = "would record" if args.dry_run else "recorded"
        print(f"{args.config}: {verb} {len(plan.record)} of its own results as made by its "
              f"settings (the same jobs as {args.source}'s, the same bytes)")
        for key in plan.record:
            print(f"  {key}")


def cmd_report(args: argparse.Namespace) -> None:
    from .report import build_report

    build_report(args.logs, args.out)
    print((Path(args.out) / "table.md").read_text())


def cmd_config_reference(args: argparse.Namespace) -> None:
    from .config_reference import config_reference

    sys.stdout.write(config_reference())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lmao", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, func, help_text: str, config: bool = True):  # noqa: ANN001, ANN202
        p = sub.add_parser(name, help=help_text, description=help_text)
        if config:
            p.add_argument("--config", required=True, type=Path, help="experiment config YAML")
        p.set_defaults(func=func)
        return p

    command("check-config", cmd_check_config, "validate a config and summarise the grid")
    command("config-reference", cmd_config_reference, "print every config key, what it takes "
            "and its default, from the schema (docs/config.md)", config=False)
    p = command("tokenize", cmd_tokenize, "tokenize a configured corpus into a token store")
    p.add_argument("corpus")
    p.add_argument("--n-process", type=int, default=1, help="tokenizer processes")
    p.add_argument("--out", required=True, type=Path)
    p = command("vectors", cmd_vectors, "train floret vectors or import GloVe text",
                config=False)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--store", type=Path, help="train floret vectors on this token store")
    source.add_argument("--text", type=Path, help="GloVe/fastText text vectors to import")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--max-rows", type=int)
    p.add_argument("--dim", type=int, default=50)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--min-count", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p = command("pretrain", cmd_pretrain, "LMAO pre-training of a configured run (resumable)")
    p.add_argument("run")
    p.add_argument("--store", required=True, type=Path)
    p.add_argument("--vectors", required=True, type=Path)
    p.add_argument("--input-vectors", type=Path)
    p.add_argument("--words", type=int, nargs="*", help="checkpoints (default: the config's)")
    p.add_argument("--gpu-id", type=int, help="run on this GPU (needs cupy)")
    p.add_argument("--out", required=True, type=Path)
    p = command("task", cmd_task, "write train/dev/test DocBins for a configured task")
    p.add_argument("task")
    p.add_argument("--out", required=True, type=Path)
    p = command("finetune", cmd_finetune, "fine-tune a configured task, scored every epoch")
    p.add_argument("task")
    p.add_argument("--task-dir", required=True, type=Path)
    p.add_argument("--checkpoint", type=Path, help="words-N.bin (default: no pre-training)")
    p.add_argument("--run", default="none", help="pre-training run the checkpoint is from")
    p.add_argument("--words", type=int, default=0)
    p.add_argument("--vectors", type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int)
    p.add_argument("--out", required=True, type=Path)
    p = command("restore", cmd_restore, "after `dvc pull`/`dvc checkout`: check that "
                "dvc.lock vouches for the results, then record them as up to date for "
                "Snakemake (run in the repository root)")
    p.add_argument("--no-dvc-check", action="store_true",
                   help="results restored some other way; you vouch for them")
    p = command("adopt", cmd_adopt, "copy another config's finished results wherever this "
                "config has the same jobs, and record them for Snakemake as this config's "
                "(run in the repository root)")
    p.add_argument("--from", dest="source", required=True, type=Path,
                   help="the config whose results to reuse")
    p.add_argument("--snakefile", type=Path, default=Path("Snakefile"))
    p.add_argument("--dry-run", action="store_true", help="list what would be adopted")
    p = command("report", cmd_report, "tables and plots from fine-tuning logs", config=False)
    p.add_argument("logs", nargs="+", type=Path)
    p.add_argument("--out", required=True, type=Path)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ConfigError, InputError, ChangedSettingsError, RestoreError, AdoptError,
            OSError) as err:
        print(f"lmao {args.command}: error: {err}", file=sys.stderr)
        return 2
    except Preempted as stopped:
        print(f"lmao {args.command}: {stopped}", file=sys.stderr)
        return 128 + stopped.signum
    return 0


if __name__ == "__main__":
    sys.exit(main())
