"""Text files as regions: blocks of whole lines, decoded without ever failing on a bad byte.

A region is about one block of the file cut after its last line break, so a reader never sees half a
line. A region of a UTF-8 file that decodes cleanly keeps its bytes for pyarrow (the fast path); a region
holding undecodable bytes is decoded with each bad byte kept as one lone surrogate (see
``_rows.raw_text``) so the reader can reject exactly the records that hold them. A read error (a ``.gz``
file that is not gzip, a truncated stream) ends the regions and is reported in :attr:`Regions.problem`.
"""

from __future__ import annotations

import codecs
import gzip
import lzma
import zlib
from functools import cached_property
from typing import IO, TypeVar

import numpy as np

_MARK_BAD_BYTES = "lakegate.mark_bad_bytes"


def _mark_bad_bytes(exc: UnicodeError) -> tuple[str, int]:
    """Codec error handler: keep each undecodable byte as U+DC00 + byte (what surrogateescape does for
    UTF-8, extended to bytes below 0x80, which other encodings such as UTF-16 can also reject)."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return "".join(chr(0xDC00 + b) for b in exc.object[exc.start : exc.end]), exc.end


codecs.register_error(_MARK_BAD_BYTES, _mark_bad_bytes)

_Buffer = TypeVar("_Buffer", str, bytes)

_UTF8_BOM = codecs.BOM_UTF8


def count_breaks(text: str | bytes) -> int:
    """Line breaks in ``text``: ``\\n``, ``\\r\\n`` and a lone ``\\r`` each count once (as pyarrow's)."""
    if isinstance(text, bytes):  # the fast path's per-region check: numpy counts ~5x faster than bytes.count
        codes = np.frombuffer(text, np.uint8)
        breaks = int(np.count_nonzero(codes == 10))
        if b"\r" in text:
            lone_cr = (codes == 13) & np.append(codes[1:] != 10, True)
            breaks += int(np.count_nonzero(lone_cr))
        return breaks
    return text.count("\n") + text.count("\r") - text.count("\r\n")


def read_problem(exc: BaseException) -> str:
    """What a read error means, without echoing file content (gzip's message quotes the first bytes)."""
    if isinstance(exc, gzip.BadGzipFile):
        return "not gzip data although the name says so"
    if isinstance(exc, EOFError):
        return "the compressed stream ends early (truncated file)"
    if isinstance(exc, zlib.error | lzma.LZMAError):
        return "corrupt compressed data"
    return f"cannot be read ({type(exc).__name__})"


# What reading a (possibly decompressing) handle raises when the file itself is bad.
READ_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError)


class Region:
    """A run of whole lines (the last one may lack its line break only at the end of the file)."""

    def __init__(self, data: bytes | None, text: str | None, final: bool) -> None:
        self._data = data
        self._text = text
        self.final = final
        """Whether this region ends the file."""

    @cached_property
    def clean(self) -> bytes | None:
        """The region as valid UTF-8 bytes, or None when it holds undecodable bytes."""
        if self._data is not None:
            if self._data.isascii():  # most files: checked ~50x faster than a decode
                return self._data
            try:
                self._data.decode("utf-8")
            except UnicodeDecodeError:
                return None
            return self._data
        try:
            return self.text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: an undecodable byte of the source encoding
            return None

    @cached_property
    def text(self) -> str:
        """The decoded region, undecodable bytes kept as lone surrogates."""
        if self._text is not None:
            return self._text
        assert self._data is not None
        return self._data.decode("utf-8", "surrogateescape")


class Regions:
    """Reads ``handle`` block by block and hands out :class:`Region` objects.

    UTF-8 files are cut on bytes (no transcoding on the fast path); other encodings are decoded
    incrementally and cut on text, since a ``\\n`` byte may be half of a UTF-16 character. A reader that
    needs more of the file to finish a record gives the rest back with :meth:`push_back`; the next region
    then starts with it and is at least one block longer.
    """

    def __init__(
        self, handle: IO[bytes], encoding: str, block_bytes: int, head: bytes = b"", at_start: bool = True
    ) -> None:
        """``head``: bytes already read from ``handle`` (UTF-8 only), handed out first; ``at_start``:
        they (or ``handle``) begin at the start of the file, where a byte-order mark is dropped."""
        self._handle = handle
        self._block = block_bytes
        self._utf8 = codecs.lookup(encoding).name == "utf-8"
        self._decoder = None if self._utf8 else codecs.getincrementaldecoder(encoding)(_MARK_BAD_BYTES)
        self._bytes = head
        self._str = ""
        self._started = not at_start
        self._eof = False
        self.problem: str | None = None
        """Why reading stopped before the end of the file, if it did."""

    def _read(self) -> bytes:
        # read1 hands over what a truncated gzip stream did decompress before failing; read() drops it.
        read = getattr(self._handle, "read1", self._handle.read)
        chunks: list[bytes] = []
        size = 0
        try:
            while size < self._block:
                chunk = read(self._block - size)
                if not chunk:
                    self._eof = True
                    break
                chunks.append(chunk)
                size += len(chunk)
        except READ_ERRORS as exc:
            self.problem = read_problem(exc)
            self._eof = True
        return b"".join(chunks)

    def push_back(self, text: str) -> None:
        """Return the unconsumed end of the last region; it heads the next one."""
        if self._utf8:
            self._bytes = text.encode("utf-8", "surrogateescape") + self._bytes
        else:
            self._str = text + self._str

    def next(self) -> Region | None:
        """The next region, or None at the end of the file."""
        if self._utf8:
            return self._next_bytes()
        return self._next_text()

    def _next_bytes(self) -> Region | None:
        while not self._eof:
            self._bytes += self._read()
            if not self._started and self._bytes:
                self._started = True
                self._bytes = self._bytes.removeprefix(_UTF8_BOM)
            cut = _last_break(self._bytes, b"\n", b"\r")
            if cut and not self._eof:
                region, self._bytes = self._bytes[:cut], self._bytes[cut:]
                return Region(region, None, final=False)
        region, self._bytes = self._bytes, b""
        if self.problem:  # a truncated stream: its unfinished last line is part of what cannot be read
            region = region[: _last_break(region, b"\n", b"\r")]
        return Region(region, None, final=True) if region else None

    def _next_text(self) -> Region | None:
        assert self._decoder is not None
        while not self._eof:
            block = self._read()
            self._str += self._decoder.decode(block, final=self._eof)
            cut = _last_break(self._str, "\n", "\r")
            if cut and not self._eof:
                region, self._str = self._str[:cut], self._str[cut:]
                return Region(None, region, final=False)
        region, self._str = self._str, ""
        if self.problem:
            region = region[: _last_break(region, "\n", "\r")]
        return Region(None, region, final=True) if region else None


def _last_break(buffer: _Buffer, lf: _Buffer, cr: _Buffer) -> int:
    """Index just past the last line break of ``buffer`` that cannot be the first half of a ``\\r\\n``
    (0 when there is none)."""
    cut = buffer.rfind(lf)
    if cut < 0:  # a file with lone \r line breaks (classic Mac); a final \r may still meet its \n
        cut = buffer.rfind(cr, 0, len(buffer) - 1)
    return cut + 1
