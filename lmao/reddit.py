"""Reddit comment dumps (monthly `RC_YYYY-MM` files): streamed, cleaned, never loaded whole.

Each line is one JSON comment. Deleted and removed comments and bot boilerplate are
dropped, markdown links keep only their text, HTML entities are unescaped. Skipping is
normal in these dumps, so bad lines are counted, not fatal, and the counts are reported.
"""

from __future__ import annotations

import html
import io
import json
import re
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from .fileio import InputError, open_binary

DROPPED_BODIES = {"[deleted]": "deleted", "[removed]": "removed", "": "empty"}
BOT_AUTHORS = {"automoderator"}
_MARKDOWN_LINK = re.compile(r"\[([^\]\n]*)\]\((?:[^()\s]|\([^()\s]*\))*\)")
_BOT_FOOTER = re.compile(r"i am a bot|this action was performed automatically", re.I)


def open_dump(path: str | Path) -> IO[bytes]:
    """A binary stream of a dump: .zst (Pushshift's long window), .bz2, .xz, .gz or plain."""
    path = Path(path)
    if path.suffix == ".zst":
        import zstandard

        raw = open(path, "rb")
        reader = zstandard.ZstdDecompressor(max_window_size=2**31).stream_reader(raw)
        return io.BufferedReader(reader)
    return open_binary(path)


def is_bot(author: str, body: str) -> bool:
    name = author.lower()
    return name in BOT_AUTHORS or name.endswith("bot") or bool(_BOT_FOOTER.search(body))


def clean_body(body: str) -> str:
    """Markdown links → their text; HTML entities unescaped; whitespace runs collapsed."""
    text = _MARKDOWN_LINK.sub(r"\1", html.unescape(body))
    return " ".join(text.split())


def reddit_comments(
    path: str | Path,
    subreddits: list[str] | None = None,
    max_words: int | None = None,
    counts: Counter | None = None,
) -> Iterator[str]:
    """Cleaned comment bodies of a dump, in file order, up to `max_words` words.

    `counts` (if given) receives what was kept and why the rest was skipped; without it
    the counts are printed to stderr (the job's log) at the end.
    """
    wanted = {s.lower() for s in subreddits} if subreddits else None
    tally = counts if counts is not None else Counter()
    words = 0
    try:
        with open_dump(path) as stream:
            for raw in stream:
                tally["lines"] += 1
                try:
                    comment = json.loads(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    tally["skipped_invalid_utf8"] += 1
                    continue
                except json.JSONDecodeError:
                    tally["skipped_malformed_json"] += 1
                    continue
                if not isinstance(comment, dict) or not isinstance(comment.get("body"), str):
                    tally["skipped_no_body"] += 1
                    continue
                body = comment["body"].strip()
                if body in DROPPED_BODIES:
                    tally[f"skipped_{DROPPED_BODIES[body]}"] += 1
                    continue
                if wanted is not None and str(comment.get("subreddit", "")).lower() not in wanted:
                    tally["skipped_other_subreddit"] += 1
                    continue
                if is_bot(str(comment.get("author", "")), body):
                    tally["skipped_bot"] += 1
                    continue
                text = clean_body(body)
                if not text:
                    tally["skipped_empty"] += 1
                    continue
                tally["kept"] += 1
                words += len(text.split())
                yield text
                if max_words is not None and words >= max_words:
                    tally["stopped_at_word_budget"] = 1
                    break
    except (EOFError, OSError) as err:
        raise InputError(path, tally["lines"] + 1, f"unreadable or truncated dump ({err})") from err
    finally:
        tally["words"] = words
        if counts is None:
            print(f"{path}: {dict(sorted(tally.items()))}", file=sys.stderr)
