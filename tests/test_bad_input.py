"""Bad input fails fast with a message that names the file and line (or the config key) and
says what was expected; nothing hangs and nothing malformed is silently accepted."""

from __future__ import annotations

import gzip
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from lmao.config import ConfigError, load_config, validate_config
from lmao.encoder import build_tok2vec
from lmao.fileio import InputError
from lmao.finetune import check_checkpoint
from lmao.pretrain import Preempted
from lmao.settings import EncoderSettings
from lmao.sources import conll_sentences, conllu_sentences
from lmao.store import build_store
from lmao.tasks import build_task
from lmao.vectors import read_glove_text

from .conftest import REPO, SNAKEMAKE


def test_errors_cross_process_boundaries_intact():
    error = pickle.loads(pickle.dumps(InputError("corpus.jsonl", 7, "malformed JSON")))
    assert str(error) == "corpus.jsonl:7: malformed JSON" and error.line == 7
    stopped = pickle.loads(pickle.dumps(Preempted(15, 1200)))
    assert (stopped.signum, stopped.words) == (15, 1200)


# ---------------------------------------------------------------- corpora: no hangs

GOOD = '{"text": "A first document with words."}\n' * 600  # more than one tokenizer chunk


def bad_corpora(folder: Path) -> dict[str, tuple[Path, str]]:
    """Each malformed corpus file, with the `file:line: message` its reader must give."""
    cases = {
        "malformed_json": (GOOD + '{"text": broken\n').encode(),
        "invalid_utf8": (GOOD + '{"text": "caf').encode() + b"\xff\xfe" + b'"}\n',
        "missing_field": (GOOD + '{"body": "no text field"}\n').encode(),
    }
    found = {}
    for name, data in cases.items():
        path = folder / f"{name}.jsonl"
        path.write_bytes(data)
        found[name] = path
    truncated = folder / "truncated.jsonl.gz"
    truncated.write_bytes(gzip.compress(GOOD.encode() * 20)[:-40])
    found["truncated_gz"] = truncated
    found["missing_file"] = folder / "absent.jsonl"
    messages = {"malformed_json": ":601: malformed JSON", "invalid_utf8": ":601: invalid utf-8",
                "missing_field": ":601: expected a string field 'text'",
                "truncated_gz": ": unreadable or truncated file",
                "missing_file": ":1: unreadable or truncated file"}
    return {name: (path, messages[name]) for name, path in found.items()}


@pytest.mark.parametrize("case", ["malformed_json", "invalid_utf8", "missing_field",
                                  "truncated_gz", "missing_file"])
def test_a_bad_corpus_ends_two_tokenizer_processes_with_its_line(tmp_path, case):
    path, message = bad_corpora(tmp_path)[case]
    script = ("from lmao.sources import iter_texts\nfrom lmao.store import build_store\n"
              f"build_store(iter_texts({{'type': 'jsonl', 'path': {str(path)!r}}}), "
              f"{str(tmp_path / 'store')!r}, n_process=2)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)  # before the fix: no exit, ever
    assert result.returncode != 0
    [error] = [line for line in result.stderr.splitlines()
               if line.startswith("lmao.fileio.InputError: ")]
    assert str(path) in error and message in error
    assert not (tmp_path / "store").exists()


def test_a_bad_corpus_fails_its_snakemake_job_with_its_line(tmp_path):
    path, _message = bad_corpora(tmp_path)["malformed_json"]
    config = {"name": "bad", "corpora": {"broken": {"sources": [{"type": "jsonl",
                                                                  "path": str(path)}]}},
              "vectors": {"v": {"train": {"corpus": "broken"}}},
              "pretrain": {}, "tasks": {"polarity": {
                  "type": "textcat", "source": {"type": "gensim_polarity"},
                  "split": {"seed": 0, "n_train": 10, "n_dev": 10}}},
              "finetune": {"epochs": 1, "seeds": [0]}}
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
         "--configfile", str(config_path), "--cores", "2", "results/bad/corpora/broken"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    log = (tmp_path / "logs" / "bad" / "tokenize" / "broken.log").read_text()
    assert f"{path}:601: malformed JSON" in log
    assert not (tmp_path / "results" / "bad" / "corpora" / "broken").exists()


def test_an_empty_corpus_is_refused(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    from lmao.sources import iter_texts

    with pytest.raises(InputError, match="no words: the corpus is empty"):
        build_store(iter_texts({"type": "lines", "path": str(empty)}), tmp_path / "store",
                    provenance={"sources": [{"type": "lines", "path": str(empty)}]})


# ---------------------------------------------------------------- NER and UD readers


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_conll2003_line_missing_a_column_is_refused(tmp_path):
    path = write(tmp_path / "eng.train", "EU NNP I-NP I-ORG\nrejects VBZ I-VP O\n"
                                          "German JJ I-NP\ncall NN I-NP O\n")
    with pytest.raises(InputError, match=r"eng.train:3: 3 columns, but line 1 has 4"):
        list(conll_sentences(path))


def test_a_tagless_wnut_line_is_refused(tmp_path):
    path = write(tmp_path / "wnut.conll", "Hello\tO\nworld\n\n")
    with pytest.raises(InputError, match=r"wnut.conll:2: expected a token and a tag"):
        list(conll_sentences(path, separator="\t"))


def test_a_space_separated_wnut_file_names_the_right_format(tmp_path):
    path = write(tmp_path / "wnut.conll", "Hello O\nParis B-location\n\n")
    with pytest.raises(InputError, match=r"wnut.conll:1: .*that is format conll2003"):
        list(conll_sentences(path, separator="\t"))


def ner_task(tmp_path: Path, train: str, dev: str = "Paris\tB-location\n\n") -> dict:
    paths = {split: write(tmp_path / f"{split}.conll", text)
             for split, text in (("train", train), ("dev", dev), ("test", dev))}
    return {"type": "ner", "source": {"format": "wnut17", **{k: str(v) for k, v in
                                                             paths.items()}}}


def test_an_empty_ner_split_is_refused(tmp_path):
    task = ner_task(tmp_path, "Paris\tB-location\n\n", dev="\n\n")
    with pytest.raises(InputError, match=r"dev.conll: no dev examples"):
        build_task(task, tmp_path / "task")


def test_an_ner_task_without_entities_is_refused(tmp_path):
    task = ner_task(tmp_path, "Hello\tO\nworld\tO\n\n")
    with pytest.raises(InputError, match=r"train.conll: no entities"):
        build_task(task, tmp_path / "task")


def conllu(heads: list[int]) -> str:
    rows = [f"{i}\tw{i}\tw\tNOUN\t_\t_\t{h}\tdep\t_\t_" for i, h in enumerate(heads, start=1)]
    return "# sent_id = 1\n" + "\n".join(rows) + "\n\n"


@pytest.mark.parametrize(("heads", "line", "message"), [
    ([0, 1, 2], None, None),                              # a tree
    ([2, 3, 1], 2, r"a sentence needs exactly one root \(head 0\); this one has 0"),
    ([0, 0, 1], 3, r"a sentence needs exactly one root \(head 0\); this one has 2"),
    ([0, 2, 1], 3, "word 2 is its own head"),             # a self-loop
    ([0, 3, 4, 2], 3, "word 2 is in a cycle of heads"),   # a cycle below the root
])
def test_ud_sentences_must_be_trees(tmp_path, heads, line, message):
    path = write(tmp_path / "ud.conllu", conllu(heads))
    if message is None:
        [sentence] = conllu_sentences(path)
        assert sentence.heads == [0, 0, 1]
        return
    with pytest.raises(InputError, match=rf"ud.conllu:{line}: {message}"):
        list(conllu_sentences(path))


# ---------------------------------------------------------------- vectors


@pytest.mark.parametrize(("row", "message"), [
    ("the 0.1 nan", r"vectors.txt:2: 'the': a nan or infinite value"),
    ("the 0.1 inf", r"vectors.txt:2: 'the': a nan or infinite value"),
    ("cat 0.3 0.4", r"vectors.txt:2: 'cat' again \(first on line 1\)"),
])
def test_vector_files_with_bad_rows_are_refused(tmp_path, row, message):
    path = write(tmp_path / "vectors.txt", f"cat 0.1 0.2\n{row}\n")
    with pytest.raises(InputError, match=message):
        read_glove_text(path)


def test_good_vector_rows_are_read(tmp_path):
    words, matrix = read_glove_text(write(tmp_path / "v.txt", "cat 0.1 0.2\ndog 0.3 0.4\n"))
    assert words == ["cat", "dog"] and np.allclose(matrix, [[0.1, 0.2], [0.3, 0.4]])


# ---------------------------------------------------------------- checkpoints

ENCODER = {"width": 16, "depth": 1, "rows": [300, 50, 100, 100]}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    from spacy.tokens import Doc
    from spacy.vocab import Vocab

    model = build_tok2vec(EncoderSettings.from_dict(ENCODER))
    model.initialize(X=[Doc(Vocab(), words=["a", "b"])])
    path = tmp_path_factory.mktemp("checkpoint") / "words-100.bin"
    path.write_bytes(model.to_bytes())
    return path


def test_a_checkpoint_loads_into_its_own_encoder(checkpoint):
    check_checkpoint(checkpoint, EncoderSettings.from_dict(ENCODER))


@pytest.mark.parametrize("other", [{"width": 24}, {"depth": 2}, {"rows": [300, 50, 100, 90]}])
def test_a_checkpoint_of_another_architecture_is_refused(checkpoint, other):
    encoder = EncoderSettings.from_dict({**ENCODER, **other})
    with pytest.raises(InputError, match=r"words-100.bin: not a checkpoint of this encoder"):
        check_checkpoint(checkpoint, encoder)


def test_a_truncated_checkpoint_is_refused(checkpoint, tmp_path):
    cut = tmp_path / "words-100.bin"
    cut.write_bytes(checkpoint.read_bytes()[:500])
    with pytest.raises(InputError, match=r"words-100.bin: not a checkpoint .*Unpack failed"):
        check_checkpoint(cut, EncoderSettings.from_dict(ENCODER))


# ---------------------------------------------------------------- configs and the CLI


def demo_config() -> dict:
    return yaml.safe_load((REPO / "config" / "demo.yaml").read_text())


@pytest.mark.parametrize(("edit", "message"), [
    (lambda c: c["tasks"]["genre"]["source"].update(type="genres"),
     r"at tasks.genre.source.type: 'genres' is not one of \["),
    (lambda c: c["tasks"]["genre"].update(type="sentiment"),
     r"at tasks.genre: expected type one of \['ner', 'textcat', 'ud'\]"),
    (lambda c: c["vectors"]["demo_floret"].update(text={"path": "glove.txt"}),
     r"at vectors.demo_floret: expected exactly one of the keys \["),
    (lambda c: c["tasks"]["newsgroups"].update(train_sizes=[500]),
     r"tasks.newsgroups.train_sizes: 500 is more than the task's 100 training examples"),
    (lambda c: c["finetune"].update(input_vectors="glove"),
     r"finetune.input_vectors: no vector table named 'glove'"),
    (lambda c: c["encoder"].update(include_static_vectors=True),
     r"finetune.input_vectors: the encoder reads static vectors"),
])
def test_config_errors_name_the_key_and_what_is_allowed(edit, message):
    config = demo_config()
    edit(config)
    with pytest.raises(ConfigError, match=message):
        validate_config(config)


def test_a_missing_source_file_is_a_config_error_before_any_job(tmp_path):
    config = demo_config()
    config["corpora"]["demo_text"]["sources"].append({"type": "lines",
                                                     "path": "data/absent.txt"})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=r"corpora.demo_text.sources\[2\].path: no such file"):
        load_config(path)
    result = subprocess.run([*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory",
                             str(tmp_path), "--configfile", str(path), "-n"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "corpora.demo_text.sources[2].path: no such file or folder: data/absent.txt" in (
        result.stdout + result.stderr)


@pytest.mark.parametrize(("args", "message"), [
    (["task", "nosuch", "--out", "x"], "tasks: no entry named 'nosuch'"),
    (["pretrain", "nosuch", "--store", "s", "--vectors", "v", "--out", "x"],
     "pretrain: no entry named 'nosuch'"),
])
def test_cli_user_errors_are_one_line_not_a_traceback(args, message):
    command = [sys.executable, "-m", "lmao", args[0], "--config",
               str(REPO / "config" / "demo.yaml"), *args[1:]]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_a_config_that_is_not_yaml_names_its_line(tmp_path):
    path = write(tmp_path / "config.yaml", "name: x\ncorpora:\n  a: [unclosed\n")
    result = subprocess.run([sys.executable, "-m", "lmao", "check-config", "--config",
                             str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{path}:" in result.stderr and "not valid YAML" in result.stderr


def test_a_split_larger_than_its_source_names_the_source(tmp_path):
    source = write(tmp_path / "reviews.txt", "__label__pos good film\n__label__neg bad film\n"
                                             "__label__pos fine\n")
    task = {"type": "textcat", "source": {"type": "fasttext", "path": str(source)},
            "split": {"seed": 0, "n_train": 2, "n_dev": 2}}
    with pytest.raises(InputError, match=r"reviews.txt: split asks for n_train 2 \+ n_dev 2 "
                                         r"items; the source has 3"):
        build_task(task, tmp_path / "task")
