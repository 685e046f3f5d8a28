"""Recordings at rest: AES-256-GCM in independently sealed chunks, so a file can be written as a stream,
survive a crash up to its last flushed chunk, be read from any offset, and prove it was not altered.

Layout: ``MAGIC`` + 8-byte random file id, then chunks, each a 4-byte big-endian length and the sealed
chunk. Chunk *i*'s nonce is the file id plus *i*; its associated data is the header, *i* and a final
flag, so chunks cannot be reordered, moved to another file, or cut off at the end of a finished file
without the check failing. A file with no final chunk was being written when the process stopped.
"""

from __future__ import annotations

import bisect
import errno
import fcntl
import hashlib
import io
import os
import secrets
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import TamperedRecording

MAGIC = b"TMREC\x01"
HEADER_BYTES = len(MAGIC) + 8
TAG_BYTES = 16
CHUNK_BYTES = 64 * 1024  # plaintext per chunk, except where a flush cut one short
KEY_BYTES = 32


def _aad(header: bytes, index: int, final: bool) -> bytes:
    return header + struct.pack(">I?", index, final)


class SealedWriter:
    """A write-only file object (what PyAV's muxer writes into) that seals what it is given in chunks."""

    def __init__(self, path: Path, key: bytes, *, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.path = path
        self._aead = AESGCM(key)
        self._chunk_bytes = chunk_bytes
        self._header = MAGIC + secrets.token_bytes(8)
        self._buffer = bytearray()
        self._index = 0
        self._file = open(path, "xb")  # noqa: SIM115 - closed in close(); never overwrite a recording
        # Held until closed, so another node sharing the directory sees the file is being written
        # (``being_written``) and leaves it alone; the kernel (or the NFS server) drops it if we die.
        fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._file.write(self._header)
        self.plaintext_bytes = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self._buffer += data
        self.plaintext_bytes += len(data)
        while len(self._buffer) >= self._chunk_bytes:
            self._seal(bytes(self._buffer[:self._chunk_bytes]), final=False)
            del self._buffer[:self._chunk_bytes]
        return len(data)

    def flush(self) -> None:
        """Seal what is buffered and push it to disk (fsync: it must survive a crash)."""
        if self._buffer:
            self._seal(bytes(self._buffer), final=False)
            self._buffer.clear()
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if self.closed:
            return
        self._seal(bytes(self._buffer), final=True)
        self._buffer.clear()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self.closed = True

    def _seal(self, chunk: bytes, *, final: bool) -> None:
        nonce = self._header[len(MAGIC):] + struct.pack(">I", self._index)
        sealed = self._aead.encrypt(nonce, chunk, _aad(self._header, self._index, final))
        self._file.write(struct.pack(">I", len(sealed)) + sealed)
        self._index += 1


def being_written(path: Path) -> bool:
    """Whether a process, on this node or another sharing the directory, still writes ``path`` (it holds the
    lock a ``SealedWriter`` takes). Raises FileNotFoundError if there is no such file."""
    with open(path, "r+b") as f:  # for writing: on NFS an exclusive lock needs it
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


def take_over(path: Path) -> BinaryIO | None:
    """Open ``path`` holding its lock, so that one process alone finishes a file whose writer has closed it or
    died: None if another process holds it (still writing, or finishing it). Raises FileNotFoundError if there
    is no such file, or if it was removed while its lock was awaited (the process before finished it). Close
    what it returns to let go; remove the file before that, if it is finished with."""
    f = open(path, "r+b")  # noqa: SIM115 - the caller closes it; for writing: on NFS an exclusive lock needs it
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        return None
    try:
        same = os.stat(path).st_ino == os.fstat(f.fileno()).st_ino
    except FileNotFoundError:
        same = False
    if not same:
        f.close()
        raise FileNotFoundError(errno.ENOENT, "finished by another process", str(path))
    return f


@dataclass(frozen=True)
class _Chunk:
    offset: int  # of the sealed bytes in the file
    sealed_bytes: int
    start: int  # of its plaintext in the whole plaintext
    plain_bytes: int


class SealedReader:
    """Reads a sealed file back, checking every chunk it touches."""

    def __init__(self, path: Path, key: bytes) -> None:
        self.path = path
        self._aead = AESGCM(key)
        with open(path, "rb") as f:
            self._header = f.read(HEADER_BYTES)
            if len(self._header) != HEADER_BYTES or not self._header.startswith(MAGIC):
                raise TamperedRecording("This is not a sealed recording.")
            self._chunks = list(self._index(f))
        self._starts = [c.start for c in self._chunks]
        self.size = sum(c.plain_bytes for c in self._chunks)
        self.complete = bool(self._chunks) and self._is_final(len(self._chunks) - 1)

    def _index(self, f) -> Iterator[_Chunk]:
        offset, start = HEADER_BYTES, 0
        while True:
            prefix = f.read(4)
            if len(prefix) < 4:
                return
            (length,) = struct.unpack(">I", prefix)
            if length < TAG_BYTES:
                raise TamperedRecording("A chunk of this recording is damaged.")
            if f.seek(length, os.SEEK_CUR) > os.fstat(f.fileno()).st_size:
                return  # a chunk cut off by a crash: everything before it still reads
            yield _Chunk(offset + 4, length, start, length - TAG_BYTES)
            offset += 4 + length
            start += length - TAG_BYTES

    def _is_final(self, index: int) -> bool:
        try:
            self._open(index, final=True)
            return True
        except TamperedRecording:
            return False

    def _open(self, index: int, *, final: bool) -> bytes:
        chunk = self._chunks[index]
        with open(self.path, "rb") as f:
            f.seek(chunk.offset)
            sealed = f.read(chunk.sealed_bytes)
        nonce = self._header[len(MAGIC):] + struct.pack(">I", index)
        try:
            return self._aead.decrypt(nonce, sealed, _aad(self._header, index, final))
        except InvalidTag:
            raise TamperedRecording("This recording failed its integrity check.") from None

    def _plain(self, index: int) -> bytes:
        return self._open(index, final=self.complete and index == len(self._chunks) - 1)

    def read_range(self, start: int, end: int) -> Iterator[bytes]:
        """Plaintext bytes ``start`` to ``end`` (exclusive), a chunk at a time."""
        for index in range(max(bisect.bisect_right(self._starts, start) - 1, 0), len(self._chunks)):
            chunk = self._chunks[index]
            if chunk.start >= end:
                return
            if chunk.start + chunk.plain_bytes <= start:
                continue
            data = self._plain(index)
            yield data[max(start - chunk.start, 0): end - chunk.start]

    def stream(self) -> io.BufferedReader:
        """The plaintext as a seekable binary file, decrypted a chunk at a time as it is read (for a demuxer,
        without holding the whole recording in memory)."""
        return io.BufferedReader(_PlainStream(self), buffer_size=CHUNK_BYTES)

    def read_all(self) -> bytes:
        return b"".join(self.read_range(0, self.size))

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for part in self.read_range(0, self.size):
            digest.update(part)
        return digest.hexdigest()


class _PlainStream(io.RawIOBase):
    def __init__(self, reader: SealedReader) -> None:
        self._reader, self._position = reader, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self._reader.size}[whence]
        self._position = max(base + offset, 0)
        return self._position

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        end = min(self._position + len(buffer), self._reader.size)
        data = b"".join(self._reader.read_range(self._position, end)) if end > self._position else b""
        buffer[:len(data)] = data
        self._position += len(data)
        return len(data)
