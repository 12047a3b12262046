import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lmao.fileio import UnsafeOutputError, atomic_dir, write_text
from lmao.tasks import build_task


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    write_text(target, "first")
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "folder") as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("crash")
    assert not (tmp_path / "folder").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    assert target.read_text() == "first"


def test_atomic_outputs_have_ordinary_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        write_text(tmp_path / "a.txt", "x")
        with atomic_dir(tmp_path / "d") as tmp:
            (tmp / "f").write_text("y")
    finally:
        os.umask(umask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755


# ---------------------------------------------------------------- folders a job may replace


def _finished_results(root):
    """A config's folder of finished results, as a guard test's victim."""
    results = root / "results" / "mine"
    (results / "tasks" / "imdb").mkdir(parents=True)
    (results / "scores.csv").write_text("task,value\nimdb,0.9\n")
    return results


@pytest.mark.parametrize("name", ["..", "../..", "x/../.."])
def test_a_task_folder_named_up_the_tree_replaces_nothing(tmp_path, monkeypatch, name):
    results = _finished_results(tmp_path)
    source = tmp_path / "reviews.txt"
    source.write_text("".join(f"{label} a {label} review number {i}\n"
                              for i in range(10) for label in ("pos", "neg")))
    task = {"type": "textcat", "source": {"type": "label_text", "path": str(source)},
            "split": {"n_dev": 4, "n_test": 4}}
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnsafeOutputError, match="named plainly"):
        build_task(task, f"results/mine/tasks/{name}")
    assert (results / "scores.csv").read_text() == "task,value\nimdb,0.9\n"
    assert (results / "tasks" / "imdb").is_dir()


def test_the_working_directory_and_folders_above_it_are_never_replaced(tmp_path, monkeypatch):
    work = tmp_path / "repo"
    work.mkdir()
    (work / "keep.txt").write_text("kept")
    monkeypatch.chdir(work)
    for target in (".", str(work), str(tmp_path), "/"):
        with pytest.raises(UnsafeOutputError):
            with atomic_dir(target) as tmp:
                (tmp / "new").write_text("x")
    assert (work / "keep.txt").read_text() == "kept"
    assert sorted(p.name for p in work.iterdir()) == ["keep.txt"]


def test_a_symbolic_link_to_other_results_is_not_replaced(tmp_path, monkeypatch):
    results = _finished_results(tmp_path)
    link = tmp_path / "elsewhere" / "tasks" / "imdb"
    link.parent.mkdir(parents=True)
    link.symlink_to(results)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnsafeOutputError, match="symbolic link"):
        with atomic_dir(link):
            pass
    assert (results / "scores.csv").exists()
    assert (results / "tasks" / "imdb").is_dir()


def test_an_adopted_folder_is_guarded_too(tmp_path, monkeypatch):
    from lmao.adopt import _copy

    results = _finished_results(tmp_path)
    source = tmp_path / "other"
    source.mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnsafeOutputError):
        _copy(source, Path("results/mine/tasks/.."))
    assert (results / "scores.csv").exists()


WRITER = """
import sys, time
from lmao.fileio import atomic_path, atomic_dir
with atomic_{kind}(sys.argv[1]) as tmp:
    if "{kind}" == "dir":
        (tmp / "part").write_text("half")
    else:
        tmp.write_text("half")
    print("writing", flush=True)
    time.sleep(60)
"""


@pytest.mark.parametrize("kind", ["path", "dir"])
def test_a_killed_writer_leaves_no_temporary_after_the_rerun(tmp_path, kind):
    """SIGTERM under Python's default handler runs no `finally`: the rerun removes what the
    killed attempt left beside its target."""
    target = tmp_path / "seed-0.jsonl"
    writer = subprocess.Popen([sys.executable, "-c", WRITER.format(kind=kind), str(target)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "writing"
        writer.send_signal(signal.SIGTERM)
        writer.wait(timeout=30)
    finally:
        writer.kill()
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".seed-0.jsonl.") and left[0].endswith(".tmp")
    other = tmp_path / ".seed-0.jsonl.resume"  # a neighbour's file stays
    other.write_text("state")
    if kind == "dir":
        with atomic_dir(target) as tmp:
            (tmp / "part").write_text("whole")
    else:
        write_text(target, "whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".seed-0.jsonl.resume", "seed-0.jsonl"]


JOB_SCRIPT = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # as under a terminal, not `cmd &`
from lmao.logs import tee_stderr
tee_stderr([sys.argv[1]])
print("started", flush=True)
time.sleep(60)
"""


def test_a_job_stopped_by_ctrl_c_says_so_in_one_line(tmp_path):
    """Ctrl-C reaches every job of a run: each ends with one line, in its log too."""
    script = tmp_path / "tmpa1b2c3.finetune.py"  # how Snakemake names a rule's script
    script.write_text(JOB_SCRIPT)
    log = tmp_path / "job.log"
    job = subprocess.Popen([sys.executable, str(script), str(log)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        assert job.stdout.readline().strip() == "started"
        job.send_signal(signal.SIGINT)
        _out, err = job.communicate(timeout=30)
    finally:
        job.kill()
    message = ("interrupted (Ctrl-C): finetune stopped; its outputs are not written, a rerun "
               "continues")
    assert err.strip() == message
    assert log.read_text().strip() == message
    assert job.returncode != 0
