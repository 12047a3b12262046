"""`lmao`: run any step of the pipeline by hand, with the same functions the rules call."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .adopt import AdoptError
from .config import ConfigError, load_config
from .fileio import InputError
from .grid import Experiment
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
          + ("runs, each in stages (halving: the jobs below)" if experiment.halving() else
             "jobs") + " (a reference only on the tasks it applies to)")
    from .cost import cost_lines

    print("\n".join(cost_lines(experiment, args)))


def _show(job: object, args: argparse.Namespace) -> bool:
    """With `--show-job`, print the job's params (what the rule's `params:` hold) instead of
    running it."""
    if args.show_job:
        print(json.dumps(job.params(), indent=2, sort_keys=True))  # type: ignore[attr-defined]
        return True
    if args.out is None:
        raise UsageError("--out is required (or --show-job to print the job)")
    return False


class UsageError(ValueError):
    """A command line that asks for something incomplete."""


def cmd_tokenize(args: argparse.Namespace) -> None:
    from .sources import tokenize_corpus

    experiment = _experiment(args)
    _entry(experiment, "corpora", args.corpus)
    job = experiment.corpus_job(args.corpus)
    if not _show(job, args):
        print(json.dumps(tokenize_corpus(job, args.out, n_process=args.n_process), indent=2))


def cmd_vectors(args: argparse.Namespace) -> None:
    from .vector_models import make_vectors

    experiment = _experiment(args)
    _entry(experiment, "vectors", args.table)
    job = experiment.vectors_job(args.table)
    if not _show(job, args):
        make_vectors(job, args.out, store=args.store, threads=args.threads)
        print(f"vectors.{args.table} → {args.out}")


def cmd_pretrain(args: argparse.Namespace) -> None:
    from .pretrain import pretrain

    experiment = _experiment(args)
    _entry(experiment, "pretrain", args.run)
    job = experiment.pretrain_job(args.run, args.words or experiment.checkpoints(args.run)[-1])
    if not _show(job, args):
        paths = pretrain(args.store, args.vectors, job.settings, list(job.checkpoints),
                         args.out, input_vectors_dir=args.input_vectors,
                         parse_dir=args.parse, gpu_id=args.gpu_id)
        print("\n".join(str(p) for p in paths))


def cmd_task(args: argparse.Namespace) -> None:
    from .tasks import make_task

    experiment = _experiment(args)
    _entry(experiment, "tasks", args.task)
    job = experiment.task_job(args.task)
    if not _show(job, args):
        print(json.dumps(make_task(job, args.out, parent=args.parent)))


def cmd_finetune(args: argparse.Namespace) -> None:
    from .finetune import finetune
    from .jobs import FinetuneInputs

    experiment = _experiment(args)
    _entry(experiment, "tasks", args.task)
    inits = experiment.inits_for(args.task)
    if (args.run, args.words) not in {(init.run, init.words) for init in inits}:
        raise ConfigError(f"--run {args.run} --words {args.words}: not an init of task "
                          f"{args.task!r} (have {[(i.run, i.words) for i in inits]})")
    if args.pause_after is None:
        job = experiment.finetune_job(args.task, args.run, args.words, args.sample, args.seed)
    else:
        job = experiment.finetune_stage_job(args.task, args.run, args.words, args.sample,
                                            args.seed, args.pause_after)
    if not _show(job, args):
        inputs = FinetuneInputs.of(args.task_dir, checkpoint=args.checkpoint,
                                   vectors=args.vectors, aux_store=args.aux_store,
                                   aux_vectors=args.aux_vectors)
        for row in finetune(job, inputs, args.out, state_path=args.state):
            print(json.dumps(row["scores"]))


def cmd_train_parser(args: argparse.Namespace) -> None:
    from .finetune import finetune
    from .jobs import FinetuneInputs

    experiment = _experiment(args)
    _entry(experiment, "parsers", args.parser)
    job = experiment.parser_job(args.parser)
    if not _show(job, args):
        finetune(job, FinetuneInputs.of(args.task_dir), args.scores, best_model_dir=args.out)
        print(f"parsers.{args.parser} → {args.out}")


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

    def command(name: str, func, help_text: str, config: bool = True):
        p = sub.add_parser(name, help=help_text, description=help_text)
        if config:
            p.add_argument("--config", required=True, type=Path, help="experiment config YAML")
        p.set_defaults(func=func)
        return p

    from .cost import add_arguments as add_cost_arguments

    add_cost_arguments(command("check-config", cmd_check_config, "validate a config, size "
                               "its grid and estimate its core-hours and wall-clock"))
    command("config-reference", cmd_config_reference, "print every config key, what it takes "
            "and its default, from the schema (docs/config.md)", config=False)
    def step(name: str, func, help_text: str, what: str):
        p = command(name, func, help_text)
        p.add_argument(what, help=f"the {what}'s name in the config")
        p.add_argument("--show-job", action="store_true",
                       help="print the job's params (as the rule's `params:` hold them) and "
                            "stop")
        return p

    p = step("tokenize", cmd_tokenize, "tokenize a configured corpus into a token store",
             "corpus")
    p.add_argument("--n-process", type=int, default=1, help="tokenizer processes")
    p.add_argument("--out", type=Path)
    p = step("vectors", cmd_vectors, "make a configured vectors table (floret trained on a "
             "token store, or GloVe/fastText/floret files imported)", "table")
    p.add_argument("--store", type=Path, help="the token store (vectors trained on a corpus)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path)
    p = step("pretrain", cmd_pretrain, "LMAO pre-training of a configured run (resumable)",
             "run")
    p.add_argument("--store", type=Path)
    p.add_argument("--vectors", type=Path)
    p.add_argument("--input-vectors", type=Path)
    p.add_argument("--parse", type=Path, help="the corpus's parse (head objectives)")
    p.add_argument("--words", type=int, help="train up to this checkpoint (default: the last)")
    p.add_argument("--gpu-id", type=int, help="run on this GPU (needs cupy)")
    p.add_argument("--out", type=Path, help="the run's folder")
    p = step("task", cmd_task, "write train/dev/test DocBins for a configured task", "task")
    p.add_argument("--parent", type=Path, help="a low-data task's built parent task")
    p.add_argument("--out", type=Path)
    p = step("finetune", cmd_finetune, "fine-tune a configured task from an init, scored "
             "every epoch", "task")
    p.add_argument("--task-dir", type=Path)
    p.add_argument("--run", default="none", help="the init: none, a pre-training run, a "
                   "multi-task configuration or a reference model")
    p.add_argument("--words", type=int, default=0, help="the checkpoint's words (0: none)")
    p.add_argument("--checkpoint", type=Path, help="words-N.bin of the run")
    p.add_argument("--vectors", type=Path, help="the static input vectors table")
    p.add_argument("--aux-store", type=Path, help="multi-task: the unlabelled text's store")
    p.add_argument("--aux-vectors", type=Path, help="multi-task: the target vectors")
    p.add_argument("--sample", type=int, default=0, help="hyper-parameter sample (0: fixed)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="the JSON-lines scores log")
    p.add_argument("--pause-after", type=int, metavar="EPOCH", help="a halving stage: train "
                   "up to this decision epoch, keep the run's state and stop")
    p.add_argument("--state", type=Path, help="the run's state file (default: beside --out); "
                   "a stage and the run that continues it name the same one")
    p = step("train-parser", cmd_train_parser, "train a configured tagger + parser on its UD "
             "task (for the head objectives)", "parser")
    p.add_argument("--task-dir", type=Path)
    p.add_argument("--scores", type=Path, help="the per-epoch scores log")
    p.add_argument("--out", type=Path, help="the saved pipeline's folder")
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


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors that are the input's, shown as one line: the config's, the data's, the
    command line's, and (where pre-training was loaded) a state saved under other settings."""
    errors = [ConfigError, InputError, UsageError, RestoreError, AdoptError, OSError]
    pretrain = sys.modules.get("lmao.pretrain")
    if pretrain is not None:
        errors.append(pretrain.ChangedSettingsError)
    return tuple(errors)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except _user_errors() as err:
        print(f"lmao {args.command}: error: {err}", file=sys.stderr)
        return 2
    except Exception as err:
        pretrain = sys.modules.get("lmao.pretrain")
        if pretrain is None or not isinstance(err, pretrain.Preempted):
            raise
        print(f"lmao {args.command}: {err}", file=sys.stderr)
        return 128 + err.signum
    return 0


if __name__ == "__main__":
    sys.exit(main())
