"""docs/config.md is the schema's own description of every key, so the two cannot drift."""

from __future__ import annotations

import copy

from lmao.config import load_schema
from lmao.config_reference import config_reference

from .conftest import REPO


def test_docs_config_md_is_generated_from_the_schema():
    written = (REPO / "docs" / "config.md").read_text(encoding="utf-8")
    assert written == config_reference(), (
        "docs/config.md is out of date: run `lmao config-reference > docs/config.md`")


def test_every_key_of_the_schema_has_a_row_with_its_range_and_default():
    page = config_reference()
    assert "| `finetune.patience` | integer ≥ 0 | `0` |" in page
    assert "| `vectors.<name>.train.dim` | integer ≥ 1 | `50` |" in page
    assert "`tasks.<name>.split.n_dev`" in page and "`pretrain.<name>.settings.loss`" in page
    assert "(type `ner`; required)" in page  # a kind's own keys are marked with the kind


def test_a_schema_edit_changes_the_page():
    schema = load_schema()
    edited = copy.deepcopy(schema)
    edited["properties"]["finetune"]["properties"]["epochs"]["description"] = "a new sentence"
    assert "a new sentence" in config_reference(edited)
    assert "a new sentence" not in config_reference(schema)
