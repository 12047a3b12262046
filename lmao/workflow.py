"""Glue the Snakefile needs at start-up, kept out of the rule files."""

from __future__ import annotations

import os
from pathlib import Path


def export_package_path(basedir: str | Path) -> None:
    """Let job scripts import `lmao` from this checkout, in conda envs and on cluster nodes.

    Jobs inherit the environment, so prepending the checkout to PYTHONPATH is enough.
    """
    paths = [str(basedir), *filter(None, [os.environ.get("PYTHONPATH")])]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
