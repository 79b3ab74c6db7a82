"""Facts about an HTML page read as a stream: title, word count, link count, top headings.

The page is fed in pieces as it arrives and never held whole, and no tree is built: what is kept
is a few counters, the title and at most MAX_HEADINGS short headings, so memory stays flat for any
page (5 MiB of links, of tiny elements, of tags nested a million deep). Text is returned as the
page says it, character references decoded (`Fish &lt;&amp;&gt; Chips` is `Fish <&> Chips`);
escaping it is the job of whatever displays it.
"""

from __future__ import annotations

import codecs
import re
from html import unescape
from html.parser import HTMLParser

#: Elements whose content is code or embedded documents, never page text (void `embed` has none).
NOT_TEXT = frozenset({"script", "style", "noscript", "template", "iframe", "object", "svg", "math"})
#: Elements whose text is not body text (the title is reported on its own).
NOT_BODY = frozenset({"head", "title"})
HEADINGS = frozenset({"h1", "h2", "h3"})
MAX_HEADINGS, MAX_TEXT = 10, 200
#: Characters fed to the parser at a time, and the longest unfinished start tag kept waiting for its end:
#: html.parser re-reads an unfinished tag from its start on every feed (with a regex whose memory
#: grows with the attributes), so a longer one is dropped up to its next `>`.
PIECE = MAX_PENDING_TAG = 64 * 1024
_TAG_START = re.compile(r"<[a-zA-Z]")
#: Bytes looked at for a <meta charset> when the server declared none (the HTML spec's prescan reads 1024).
PRESCAN_BYTES = 1024
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([-\w.:]+)""", re.IGNORECASE)
#: Byte-order marks and the codec that reads (and drops) them.
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def collapsed(text: str) -> str:
    """Whitespace runs made one space, ends stripped."""
    return " ".join(text.split())


class _Text:
    """The collapsed text of one element, capped at MAX_TEXT characters however long the element is."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.size = 0
        self.done: str | None = None

    def add(self, piece: str) -> None:
        if self.done is not None:
            return
        self.pieces.append(piece)
        self.size += len(piece)
        if self.size > 4 * MAX_TEXT:
            # Collapsing a prefix never changes what it turns into, so once MAX_TEXT characters are
            # settled the rest of the element can be ignored.
            text = "".join(self.pieces)
            short = collapsed(text)
            if len(short) >= MAX_TEXT:
                self.done = short[:MAX_TEXT]
            else:
                self.pieces = [short + (" " if text[-1:].isspace() else "")]
                self.size = len(self.pieces[0])

    def text(self) -> str:
        return self.done if self.done is not None else collapsed("".join(self.pieces))[:MAX_TEXT]


class PageReader(HTMLParser):
    """A streaming HTML reader: `feed(bytes)` as the page arrives, then `close()` and `summary()`.

    The title is raw text to a browser (`<title><b>x</b></title>` is titled `<b>x</b>`), so it is
    read that way here too: everything up to `</title>`, character references decoded.
    """

    def __init__(self, charset: str | None = None) -> None:
        super().__init__(convert_charrefs=True)
        self.declared = _known(charset)
        self._decoder: codecs.IncrementalDecoder | None = None
        self._head = b""  # the first bytes, kept until the encoding is settled
        self._dropping = False  # inside a start tag too long to keep: skipping to its `>`
        self.words = self.links = 0
        self._skip = dict.fromkeys(NOT_TEXT | NOT_BODY, 0)  # open elements of each kind whose text is skipped
        self._mid_word = False  # the last text ended inside a word that the next piece of text may continue
        self._title: list[str] | None = None  # the raw text of the first <title>, once it has begun
        self._title_open = False
        self._headings: list[tuple[int, _Text]] = []
        self._open: list[tuple[str, _Text]] = []  # headings being read (at most MAX_HEADINGS)

    # -- bytes in ----------------------------------------------------------------------------------

    def feed_bytes(self, chunk: bytes, final: bool = False) -> None:
        """Decode and parse the next piece of the page."""
        if self._decoder is None:
            self._head += chunk
            if len(self._head) < PRESCAN_BYTES and not final:
                return
            chunk, self._head = self._head, b""
            self._decoder = codecs.getincrementaldecoder(self._encoding(chunk))(errors="replace")
        text = self._decoder.decode(chunk, final)
        for start in range(0, len(text), PIECE):
            self._parse(text[start : start + PIECE])

    def _parse(self, piece: str) -> None:
        if self._dropping:
            end = piece.find(">")
            if end < 0:
                return
            piece, self._dropping = piece[end + 1 :], False
        self.feed(piece)
        if len(self.rawdata) > MAX_PENDING_TAG and not self.cdata_elem and _TAG_START.match(self.rawdata):
            self.rawdata, self._dropping, self._mid_word = "", True, False

    def finish(self) -> dict:
        """Parse what is left and return the summary."""
        self.feed_bytes(b"", final=True)
        self.close()
        if self.cdata_elem and self.rawdata:  # a raw-text element left open runs to the end of the page
            self.handle_data(self.rawdata)
            self.rawdata = ""
        headings = [{"level": level, "text": text.text()} for level, text in self._headings]
        return {
            "title": collapsed(unescape("".join(self._title or [])))[:MAX_TEXT],
            "words": self.words,
            "links": self.links,
            "headings": [h for h in headings if h["text"]][:MAX_HEADINGS],
        }

    def _encoding(self, head: bytes) -> str:
        """BOM, then the server's charset, then <meta charset>, then UTF-8 if the start decodes as UTF-8."""
        for bom, name in _BOMS:
            if head.startswith(bom):
                return name
        if self.declared:
            return self.declared
        meta = _META_CHARSET.search(head[:PRESCAN_BYTES])
        found = _known(meta.group(1).decode("ascii", "replace")) if meta else None
        if found and not found.startswith("utf-16"):  # a page that can say "utf-16" in ASCII is not UTF-16
            return found
        try:
            codecs.getincrementaldecoder("utf-8")().decode(head)
            return "utf-8"
        except UnicodeDecodeError:
            return "windows-1252"  # what browsers assume for an undeclared page that is not UTF-8

    # -- html.parser callbacks -----------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._mid_word = False
        if tag == "a" and any(name == "href" for name, _ in attrs) and not self._skipping_code():
            self.links += 1
        if tag in self._skip:
            self._skip[tag] += 1
        if tag == "body":
            self._skip["head"] = 0  # a body ends the head, whether or not </head> was written
        if tag == "title":
            self.set_cdata_mode(tag)  # raw text up to </title>, as a browser reads it
            if self._title is None:
                self._title, self._title_open = [], True
        if tag in HEADINGS and not self._skipping_code() and len(self._headings) < MAX_HEADINGS:
            text = _Text()
            self._headings.append((int(tag[1]), text))
            self._open.append((tag, text))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._mid_word = False
        if tag == "a" and any(name == "href" for name, _ in attrs) and not self._skipping_code():
            self.links += 1

    def handle_endtag(self, tag: str) -> None:
        self._mid_word = False
        if self._skip.get(tag):
            self._skip[tag] -= 1
        if tag == "title":
            self._title_open = False
        if tag in HEADINGS:
            for index in range(len(self._open) - 1, -1, -1):
                if self._open[index][0] == tag:
                    for _, text in self._open[index:]:
                        if not text.text():  # an empty heading leaves room for one with words
                            self._headings = [kept for kept in self._headings if kept[1] is not text]
                    del self._open[index:]
                    break

    def set_cdata_mode(self, elem: str, **options: object) -> None:
        # Newer Pythons read <title> and <textarea> as escapable raw text themselves (references
        # decoded); plain raw text on every version keeps one behaviour, decoded once in finish().
        super().set_cdata_mode(elem)

    # Comments, declarations and processing instructions separate text runs, as tags do.
    def handle_comment(self, data: str) -> None:
        self._mid_word = False

    def handle_decl(self, decl: str) -> None:
        self._mid_word = False

    def handle_pi(self, data: str) -> None:
        self._mid_word = False

    def unknown_decl(self, data: str) -> None:
        self._mid_word = False

    def handle_data(self, data: str) -> None:
        if self.cdata_elem == "title":
            if self._title_open and self._title is not None:
                self._title.append(data)
            return
        if self._skipping_code():
            return
        for _, text in self._open:
            text.add(data if self._mid_word else " " + data)
        if not (self._skip["head"] or self._skip["title"]):
            count = len(data.split())
            if self._mid_word and data[:1] and not data[0].isspace():
                count -= 1  # the first word continues the previous piece's last word
            self.words += count
        self._mid_word = bool(data) and not data[-1].isspace()

    def _skipping_code(self) -> bool:
        return self.cdata_elem in ("script", "style") or any(self._skip[tag] for tag in NOT_TEXT)


def _known(name: str | None) -> str | None:
    """The codec's canonical name, or None when Python does not know the encoding."""
    if not name:
        return None
    try:
        return codecs.lookup(name.strip()).name
    except LookupError:
        return None


def summarise(body: bytes, charset: str | None = None) -> dict:
    """Title, word count, link count and top headings of a whole HTML page held in memory."""
    reader = PageReader(charset)
    reader.feed_bytes(body)
    return reader.finish()
