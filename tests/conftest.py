"""Shared fixtures: the real data sets in ../shared/data, and small stores built from them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LMAO_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_data(*parts: str) -> Path:
    """A path in ../shared/data, or skip the test saying what is missing."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs the shared data set {path} (set LMAO_SHARED_DATA to its folder)")
    return path


@pytest.fixture(scope="session")
def lee_store(tmp_path_factory) -> Path:
    """A token store of gensim's Lee news corpus (real English text, ~60k words)."""
    from lmao.sources import iter_texts
    from lmao.store import build_store

    out = tmp_path_factory.mktemp("stores") / "lee"
    build_store(iter_texts({"type": "gensim_lee"}), out)
    return out


@pytest.fixture(scope="session")
def lee_vectors(tmp_path_factory, lee_store) -> Path:
    """Small floret vectors trained on the Lee corpus."""
    from lmao.store import TokenStore
    from lmao.train_vectors import train_floret_table

    out = tmp_path_factory.mktemp("vectors") / "lee"
    train_floret_table(TokenStore(lee_store), out, dim=16, epochs=1, min_count=2, threads=1)
    return out
