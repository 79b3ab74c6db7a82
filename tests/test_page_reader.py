"""The streaming page reader: the same summary however the page is cut into pieces, any encoding."""

from __future__ import annotations

import pytest

from task_def.html_summary import MAX_TEXT, PageReader, summarise

from .scrape_pages import FISH, PAGE


def read_in_pieces(body: bytes, size: int, charset: str | None = None) -> dict:
    reader = PageReader(charset)
    for start in range(0, len(body), size):
        reader.feed_bytes(body[start : start + size])
    return reader.finish()


@pytest.mark.parametrize("body", [PAGE, FISH], ids=["fixture", "fish"])
def test_the_summary_does_not_depend_on_where_the_page_is_cut(body):
    whole = summarise(body)
    for size in (1, 2, 3, 7, 64):
        assert read_in_pieces(body, size) == whole


def test_words_are_counted_per_text_run_and_never_in_code_or_the_head():
    page = b"""<html><head><title>Not body</title><meta name=x></head>
    <body>one<b>two</b> thr<!-- c -->ee <script>no words</script><noscript>none</noscript>
    <svg><text>nope</text></svg><template><p>hidden</p></template>four&nbsp;five</body>"""
    assert summarise(page)["words"] == 6  # one two thr ee four five
    assert summarise(b"<head><title>t</title><body>a b c")["words"] == 3  # a body ends an unclosed head


def test_encodings_follow_the_bom_then_the_server_then_meta_then_a_guess():
    title = "Café ☕"
    assert summarise(f"<title>{title}</title>".encode("utf-16"))["title"] == title
    assert summarise(b"\xef\xbb\xbf<title>" + title.encode() + b"</title>")["title"] == title
    latin = "<title>Café</title>".encode("latin-1")
    assert summarise(latin, "iso-8859-1")["title"] == "Café"
    assert summarise(b'<meta charset="latin-1">' + latin)["title"] == "Café"
    assert summarise(latin)["title"] == "Café"  # not UTF-8, undeclared: windows-1252, as browsers do
    assert summarise(b"<title>" + title.encode() + b"</title>", "no-such-charset")["title"] == title
    assert summarise(b"<title>\xff\xfe bad</title>", "utf-8")["title"] == "\ufffd\ufffd bad"


def test_long_text_is_capped_and_empty_headings_leave_room():
    long = b"<title>" + b"word " * 10_000 + b"</title><h1></h1>" * 20 + b"<h2>" + b"x " * 10_000 + b"</h2>"
    summary = summarise(long)
    assert len(summary["title"]) == MAX_TEXT and summary["title"].startswith("word word")
    assert summary["headings"] == [{"level": 2, "text": ("x " * MAX_TEXT)[:MAX_TEXT]}]


def test_a_title_that_never_closes_runs_to_the_end_of_the_page():
    assert summarise(b"<title>Fish &amp; <b>chips")["title"] == "Fish & <b>chips"
