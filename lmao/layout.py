"""Where every result lives: the one definition of the results and logs layout.

The rules name their outputs with it, and so do adopt (which copies results between
configs), pre-training (which writes a run's files side by side), the report and the tests.
A path method called with Snakemake's wildcards (`layout.checkpoint("{run}", "{words}")`)
gives the rule's pattern; called with values, the file itself. `Layout.relative()` gives the
same paths below the results folder, as adopt keys jobs.

    results/<name>/corpora/<corpus>/                   token store
    results/<name>/vectors/<table>/                    spaCy vectors table
    results/<name>/parsers/<parser>/ (+ .scores.jsonl) tagger + parser for the head objectives
    results/<name>/parses/<corpus>/<parser>/           heads of every token of a corpus
    results/<name>/pretrain/<run>/words-<N>.bin        checkpoint (spaCy tok2vec bytes)
                              words-<N>.state          everything needed to continue from N
                              partial.state, log.jsonl periodic state, training log
    results/<name>/tasks/<task>/                       train/dev/test DocBins + meta.json
    results/<name>/finetune/<task>/<run>/words-<N>/sample-<S>/seed-<K>.jsonl   per-epoch scores
                      .../seed-<K>.epoch-<E>.jsonl  a halving stage: the run's first E epochs
    results/<name>/finetune/<task>/halving-epoch-<E>.json   halving: samples kept after E
    results/<name>/decode/<run>/words-<N>.json, decode/table.md   nearest-neighbour decoding
    results/<name>/scores.csv, table.md, tables/, *.png, *.svg, metrics.json, curves.csv
    results/<name>/code.json                           which code made each result
    logs/<name>/<rule>/...                             one log per job
    downloads/<download>/                              fetched archives, shared by configs
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DOWNLOADS = "downloads"  # the `download` rule's folder, shared by every config
CODE_RECORD = "code.json"
PRETRAIN_LOG = "log.jsonl"
PARTIAL_STATE = "partial.state"
REPORT_FILES = ("scores.csv", "table.md", "learning_curve.png", "metrics.json", "curves.csv")
PLOTS = ("learning_curve", "score_vs_words", "low_data", "pretraining")


def download_dir(download: str) -> str:
    """`downloads/<download>/`: outside any config's results, as every config shares it."""
    return f"{DOWNLOADS}/{download}"


def resume_path(out_path: str | Path) -> Path:
    """Where the fine-tuning run whose log is `out_path` keeps its state between epochs
    (`lmao.finetune_state`): `.seed-K.jsonl.resume` beside `seed-K.jsonl`."""
    out_path = Path(out_path)
    return out_path.parent / f".{out_path.name}.resume"


def checkpoint_name(words: int | str) -> str:
    return f"words-{words}.bin"


def state_name(words: int | str) -> str:
    return f"words-{words}.state"


def pretrain_run_of(checkpoint: str | Path) -> Path:
    """The run folder a checkpoint path lies in (where the run's state and log live too)."""
    path = Path(checkpoint)
    words = path.name.removeprefix("words-").removesuffix(".bin")
    if not words.isdigit() or path.name != checkpoint_name(words):
        raise ValueError(f"{checkpoint}: not a checkpoint path (words-<N>.bin)")
    return path.parent


@dataclass(frozen=True)
class Layout:
    """The paths of one config's results (`results`) and logs (`logs`)."""

    results: str
    logs: str

    @classmethod
    def of(cls, name: str) -> Layout:
        """`results/<name>`, `logs/<name>`: the layout the workflow uses."""
        return cls(f"results/{name}", f"logs/{name}")

    @classmethod
    def relative(cls) -> Layout:
        """Paths below the results and logs folders (how adopt keys jobs)."""
        return cls("", "")

    def _in(self, root: str, *parts: object) -> str:
        return "/".join(str(p) for p in (root, *parts) if p != "")

    def result(self, *parts: object) -> str:
        return self._in(self.results, *parts)

    def log(self, *parts: object) -> str:
        return self._in(self.logs, *parts)

    # ---------------------------------------------------------------- data
    def store(self, corpus: str) -> str:
        return self.result("corpora", corpus)

    def vectors(self, table: str) -> str:
        return self.result("vectors", table)

    def task(self, task: str) -> str:
        return self.result("tasks", task)

    def parser(self, parser: str) -> str:
        return self.result("parsers", parser)

    def parser_scores(self, parser: str) -> str:
        return self.result("parsers", f"{parser}.scores.jsonl")

    def parse(self, corpus: str, parser: str) -> str:
        return self.result("parses", corpus, parser)

    # ---------------------------------------------------------------- pre-training
    def pretrain_run(self, run: str) -> str:
        return self.result("pretrain", run)

    def checkpoint(self, run: str, words: int | str) -> str:
        return self.result("pretrain", run, checkpoint_name(words))

    def state(self, run: str, words: int | str) -> str:
        return self.result("pretrain", run, state_name(words))

    def pretrain_benchmark(self, run: str, words: int | str) -> str:
        return self.result("pretrain", run, f"words-{words}.benchmark.tsv")

    def pretrain_log(self, run: str) -> str:
        """The run's JSON-lines training log, which every checkpoint's job appends to."""
        return self.result("pretrain", run, PRETRAIN_LOG)

    # ---------------------------------------------------------------- fine-tuning, report
    def finetune_scores(self, task: str, run: str, words: int | str, sample: int | str,
                        seed: int | str) -> str:
        return self.result("finetune", task, run, f"words-{words}", f"sample-{sample}",
                           f"seed-{seed}.jsonl")

    def finetune_stage(self, task: str, run: str, words: int | str, sample: int | str,
                       seed: int | str, epoch: int | str) -> str:
        """A halving stage's log: the run's lines up to the decision after `epoch`."""
        return self.result("finetune", task, run, f"words-{words}", f"sample-{sample}",
                           f"seed-{seed}.epoch-{epoch}.jsonl")

    def halving_decision(self, task: str, epoch: int | str) -> str:
        return self.result("finetune", task, f"halving-epoch-{epoch}.json")

    def decode(self, run: str, words: int | str) -> str:
        return self.result("decode", run, f"words-{words}.json")

    def decode_table(self) -> str:
        return self.result("decode", "table.md")

    def report_file(self, name: str) -> str:
        return self.result(name)

    def code_record(self) -> Path:
        return Path(self.result(CODE_RECORD))

    # ---------------------------------------------------------------- logs
    def job_log(self, rule: str, *parts: object) -> str:
        """A job's log: `logs/<name>/<folder of the rule>/<parts>.log`."""
        *folders, last = [str(p) for p in parts]
        return self.log(LOG_FOLDERS[rule], *folders, f"{last}.log")


# The folder under logs/<name>/ of each rule's logs.
LOG_FOLDERS = {
    "download": "download", "tokenize_corpus": "tokenize", "vectors": "vectors",
    "train_parser": "parsers", "parse_corpus": "parses", "pretrain": "pretrain",
    "build_task": "tasks", "finetune": "finetune", "finetune_stage": "finetune",
    "halving": "finetune", "decode_checkpoint": "decode",
    "decode_table": "decode", "report": "",
}
