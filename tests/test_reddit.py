import bz2
import json
from collections import Counter

import pytest
import zstandard

from lmao.fileio import InputError
from lmao.reddit import clean_body, reddit_comments

COMMENTS = [
    {"author": "alice", "subreddit": "movies",
     "body": "Loved it &amp; would [see it](https://x.y/a_(b)) again"},
    {"author": "bob", "subreddit": "movies", "body": "[deleted]"},
    {"author": "[deleted]", "subreddit": "movies", "body": "[removed]"},
    {"author": "AutoModerator", "subreddit": "movies", "body": "Please read the rules."},
    {"author": "RemindMeBot", "subreddit": "movies", "body": "I will remind you."},
    {"author": "carol", "subreddit": "python", "body": "Use a   generator\n\nhere."},
    {"author": "dave", "subreddit": "Movies", "body": "Too long &gt; too short"},
]


def write_dump(path, lines: list[bytes]) -> None:
    data = b"".join(line + b"\n" for line in lines)
    if path.suffix == ".zst":
        path.write_bytes(zstandard.ZstdCompressor().compress(data))
    else:
        path.write_bytes(bz2.compress(data))


@pytest.mark.parametrize("suffix", [".zst", ".bz2"])
def test_dump_is_cleaned_and_skips_are_counted(tmp_path, suffix):
    path = tmp_path / f"RC_2017-01{suffix}"
    lines = [json.dumps(c).encode() for c in COMMENTS]
    write_dump(path, [*lines[:3], b"{not json", "caf\xe9".encode("latin-1"), *lines[3:]])
    counts = Counter()
    texts = list(reddit_comments(path, counts=counts))
    assert texts == ["Loved it & would see it again", "Use a generator here.",
                     "Too long > too short"]
    assert counts["kept"] == 3 and counts["lines"] == 9
    assert counts["skipped_deleted"] == 1 and counts["skipped_removed"] == 1
    assert counts["skipped_bot"] == 2
    assert counts["skipped_malformed_json"] == 1 and counts["skipped_invalid_utf8"] == 1
    assert counts["words"] == sum(len(t.split()) for t in texts)


def test_subreddit_filter_and_word_budget(tmp_path):
    path = tmp_path / "RC_2017-01.zst"
    write_dump(path, [json.dumps(c).encode() for c in COMMENTS])
    assert list(reddit_comments(path, subreddits=["movies"], counts=Counter())) == [
        "Loved it & would see it again", "Too long > too short"]
    counts = Counter()
    assert len(list(reddit_comments(path, max_words=3, counts=counts))) == 1
    assert counts["stopped_at_word_budget"] == 1


def test_truncated_dump_names_the_file(tmp_path):
    path = tmp_path / "RC_2017-02.bz2"
    data = bz2.compress(b"".join(json.dumps(c).encode() + b"\n" for c in COMMENTS * 200))
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="RC_2017-02.bz2"):
        list(reddit_comments(path, counts=Counter()))


def test_markdown_links_keep_their_text():
    assert clean_body("see [the docs](http://a.b/c) and [x](y)") == "see the docs and x"
