"""TFRecord framing: the byte layout of TensorBoard event files.

Each record is ``uint64 length | uint32 masked_crc(length) | data | uint32 masked_crc(data)``,
little-endian, with CRC-32C (Castagnoli) masked as TensorFlow does.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import google_crc32c
import numpy as np

HEADER_SIZE = 12
FOOTER_SIZE = 4
DEFAULT_MAX_RECORD_BYTES = 256 * 1024 * 1024
_MASK_DELTA = 0xA282EAD8
_U32 = 0xFFFFFFFF
_U64 = struct.Struct("<Q")
_FOOTER = struct.Struct("<I")


def crc32c(data: bytes) -> int:
    """Return the (unmasked) CRC-32C of ``data``."""
    return google_crc32c.value(data)


def masked_crc32c(data: bytes) -> int:
    """Return the masked CRC-32C that TFRecord framing stores."""
    crc = google_crc32c.value(data)
    return ((((crc >> 15) | (crc << 17)) & _U32) + _MASK_DELTA) & _U32


def encode_record(data: bytes) -> bytes:
    """Frame ``data`` as one TFRecord."""
    length = struct.pack("<Q", len(data))
    return b"".join(
        (length, _FOOTER.pack(masked_crc32c(length)), data, _FOOTER.pack(masked_crc32c(data)))
    )


@dataclass(frozen=True)
class RecordProblem:
    """Something wrong found while reading records, at a byte offset of a file."""

    offset: int
    kind: str  # "data_crc", "length_crc", "too_long"
    message: str
    fatal: bool  # True when reading this file cannot continue past ``offset``


@dataclass
class ReadResult:
    """What one incremental read of a file produced."""

    records: list[bytes]
    end_offset: int  # offset just past the last complete record read (or skipped)
    problems: list[RecordProblem]
    pending_bytes: int  # bytes after ``end_offset`` that do not yet form a whole record
    stopped: bool  # a fatal problem stopped reading at ``end_offset``


@dataclass
class RecordBlock:
    """Many records framed at once: data ``i`` is ``buf[starts[i] : starts[i] + lengths[i]]``."""

    buf: bytes
    starts: np.ndarray  # int64 offsets into ``buf`` of each intact record's data
    lengths: np.ndarray  # int64
    end_offset: int  # file offset just past the last record consumed (intact or skipped)
    problems: list[RecordProblem]
    pending_bytes: int  # bytes read after ``end_offset`` that do not form a whole record
    stopped: bool
    offset: int = 0  # file offset of ``buf[0]``
    zero_tail: bool = False  # the pending bytes start with zeros: allocated, never written

    def __len__(self) -> int:
        return len(self.starts)

    def record(self, i: int) -> bytes:
        start = int(self.starts[i])
        return self.buf[start : start + int(self.lengths[i])]

    def records(self) -> list[bytes]:
        buf = self.buf
        return [buf[s : s + n] for s, n in zip(self.starts.tolist(), self.lengths.tolist())]


def windows(arr: np.ndarray, width: int) -> np.ndarray:
    """Every ``width``-byte window of the byte array ``arr``, as rows (a view, no copy).

    What ``numpy.lib.stride_tricks.sliding_window_view`` gives, without its checks: it is
    called for every block and group, where those cost more than the indexing after it.
    """
    return np.ndarray((max(len(arr) - width + 1, 0), width), np.uint8, arr, 0, (1, 1))


def frame_block(
    buf: bytes, file_offset: int, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
) -> RecordBlock:
    """Frame every complete record of ``buf`` (which starts at ``file_offset`` in its file)."""
    n = len(buf)
    unpack = _U64.unpack_from
    problems: list[RecordProblem] = []
    arr = np.frombuffer(buf, dtype=np.uint8)
    chunks, pos, stop = _record_positions(buf, arr, max_record_bytes)
    positions = np.concatenate(chunks) if chunks else np.empty(0, dtype=np.int64)
    lengths = np.diff(np.append(positions, pos)) - (HEADER_SIZE + FOOTER_SIZE)
    pos_arr = positions
    len_arr = lengths
    if len(pos_arr):
        headers = windows(arr, HEADER_SIZE)[pos_arr]  # no n-by-12 index array
        stored = headers[:, 8:12].copy().view("<u4").reshape(-1)
        # Records of one length have the same header: one CRC per distinct length.
        fields, inverse = np.unique(headers[:, :8].copy().view("<u8"), return_inverse=True)
        expected = np.array([masked_crc32c(_U64.pack(f)) for f in fields.tolist()], np.uint32)
        bad = np.flatnonzero(expected[inverse.reshape(-1)] != stored)
        if len(bad):
            k = int(bad[0])
            pos = int(pos_arr[k])
            stop = "zero" if _zero_header(buf, pos) else "length_crc"
            pos_arr, len_arr = pos_arr[:k], len_arr[:k]
    if stop == "length_crc":
        problems.append(
            RecordProblem(
                file_offset + pos,
                "length_crc",
                f"corrupt record header at byte {file_offset + pos} (length checksum mismatch); "
                "rest of file not read",
                True,
            )
        )
    elif stop == "too_long":
        problems.append(
            RecordProblem(
                file_offset + pos,
                "too_long",
                f"record at byte {file_offset + pos} claims {unpack(buf, pos)[0]} bytes, above the "
                f"{max_record_bytes}-byte limit; rest of file not read",
                True,
            )
        )
    starts = pos_arr + HEADER_SIZE
    if len(starts):
        footers = windows(arr, FOOTER_SIZE)[starts + len_arr]
        stored = footers.copy().view("<u4").reshape(-1)
        corrupt = _failed_data_crcs(buf, arr, starts, len_arr, stored)
        if len(corrupt):
            for i in corrupt.tolist():
                at = file_offset + int(pos_arr[i])
                problems.append(
                    RecordProblem(
                        at,
                        "data_crc",
                        f"corrupt record at byte {at} (data checksum mismatch); record skipped",
                        False,
                    )
                )
            keep = np.ones(len(starts), dtype=bool)
            keep[corrupt] = False
            starts, len_arr = starts[keep], len_arr[keep]
    stopped = stop in ("length_crc", "too_long")
    pending = 0 if stopped else n - pos
    zero_tail = pending > 0 and not buf[pos : pos + HEADER_SIZE].strip(b"\0")
    return RecordBlock(
        buf, starts, len_arr, file_offset + pos, problems, pending, stopped, file_offset, zero_tail
    )


def _unmask(masked: np.ndarray) -> np.ndarray:
    rot = masked - np.uint32(_MASK_DELTA)
    return (rot >> np.uint32(17)) | (rot << np.uint32(15))


def _failed_data_crcs(
    buf: bytes, arr: np.ndarray, starts: np.ndarray, lengths: np.ndarray, stored: np.ndarray
) -> np.ndarray:
    """Indexes of the records whose data does not match its stored (masked) CRC-32C.

    Records of one length are checked together: the CRC of their data laid end to end is
    computed once and compared with the one their stored CRCs combine to (as zlib's
    ``crc32_combine`` does). That is a CRC-32C over all of them, so a corrupt record is
    caught as surely as alone, and identical damage in two records does not cancel out.
    Only a length whose check fails is checked record by record, to name the bad ones.
    """
    crcs = _unmask(stored)
    by_record: list[np.ndarray] = []
    if len(starts) < _COMBINE_MIN:
        by_record.append(np.arange(len(starts)))
    else:
        kinds, inverse = np.unique(lengths, return_inverse=True)
        inverse = inverse.reshape(-1)
        for which, length in enumerate(kinds.tolist()):
            members = np.flatnonzero(inverse == which)
            if len(members) < _COMBINE_MIN or length == 0:
                by_record.append(members)
                continue
            rows = windows(arr, length)[starts[members]]
            if google_crc32c.value(rows.tobytes()) != combine_equal_crcs(crcs[members], length):
                by_record.append(members)
    if not by_record:
        return np.empty(0, dtype=np.int64)
    check = np.concatenate(by_record)
    value = google_crc32c.value
    ends = starts[check] + lengths[check]
    computed = np.array(
        [value(buf[a:b]) for a, b in zip(starts[check].tolist(), ends.tolist())], dtype=np.uint32
    )
    return np.sort(check[computed != crcs[check]])


_COMBINE_MIN = 16  # fewer records of one length are cheaper to check one by one
_POLY = 0x82F63B78  # CRC-32C, reflected


def _multmodp(a: int, b: int) -> int:
    """``a * b`` modulo the CRC polynomial (reflected bit order, as zlib's ``multmodp``)."""
    m, p = 1 << 31, 0
    while True:
        if a & m:
            p ^= b
            if not a & (m - 1):
                return p
        m >>= 1
        b = (b >> 1) ^ _POLY if b & 1 else b >> 1


_X2N = [1 << 30]  # x^(2^k) modulo the polynomial, k = 0..31
for _ in range(31):
    _X2N.append(_multmodp(_X2N[-1], _X2N[-1]))
_SHIFT_TABLES: dict[int, np.ndarray] = {}


def _shift_table(nbytes: int) -> np.ndarray:
    """Byte tables of the linear map ``crc -> crc * x^(8 nbytes)`` (cached per length)."""
    table = _SHIFT_TABLES.get(nbytes)
    if table is None:
        factor, n, k = 1 << 31, nbytes, 3
        while n:
            if n & 1:
                factor = _multmodp(_X2N[k & 31], factor)
            n >>= 1
            k += 1
        columns = [_multmodp(factor, 1 << bit) for bit in range(32)]
        values = np.arange(256, dtype=np.uint32)
        table = np.zeros((4, 256), dtype=np.uint32)
        for byte in range(4):
            for bit in range(8):
                hit = (values >> np.uint32(bit)) & np.uint32(1)
                table[byte] ^= hit * np.uint32(columns[8 * byte + bit])
        if len(_SHIFT_TABLES) > 4096:
            _SHIFT_TABLES.clear()
        _SHIFT_TABLES[nbytes] = table
    return table


def combine_equal_crcs(crcs: np.ndarray, length: int) -> int:
    """The CRC-32C of pieces of ``length`` bytes laid end to end, from each piece's CRC."""
    size = 1 << max(len(crcs) - 1, 0).bit_length()
    # Pieces with CRC 0 in front change nothing: the sum is over each piece shifted by
    # what follows it. Then pairs combine as ``crc(a + b) = crc(a) * x^(8 len(b)) ^ crc(b)``.
    level = np.zeros(size, dtype=np.uint32)
    level[size - len(crcs) :] = crcs
    span = length
    while len(level) > 1:
        left, right = level[0::2], level[1::2]
        t = _shift_table(span)
        level = (
            t[0][left & 0xFF]
            ^ t[1][(left >> np.uint32(8)) & 0xFF]
            ^ t[2][(left >> np.uint32(16)) & 0xFF]
            ^ t[3][left >> np.uint32(24)]
            ^ right
        )
        span *= 2
    return int(level[0]) if len(level) else 0


_SCAN_BATCH = 64  # records framed one by one before looking for a repeating pattern
_MAX_PERIOD = 32


def _record_positions(
    buf: bytes, arr: np.ndarray, max_record_bytes: int
) -> tuple[list[np.ndarray], int, str | None]:
    """Find where each record starts, following the length fields from the start of ``buf``.

    Records are followed one by one, and whenever their lengths repeat with a short period
    (an event file of a few tags mostly does) the next thousands of positions are predicted
    from the pattern and checked at once: a prediction is kept only up to the first record
    whose length field differs, so the result is exactly what following every length gives.
    Returns the position chunks, the position after the last record, and why it stopped.
    """
    n = len(buf)
    overhead = HEADER_SIZE + FOOTER_SIZE
    chunks: list[np.ndarray] = []
    pos = 0
    while True:
        found, pos, stop = _scan(buf, pos, max_record_bytes, _SCAN_BATCH)
        chunks.append(np.array(found, dtype=np.int64))
        if stop is not None or len(found) < _SCAN_BATCH:
            return chunks, pos, stop
        sizes = np.diff(np.append(chunks[-1], pos))
        period = _period(sizes)
        if period is None:
            continue
        cycle = sizes[-period:]
        count = min((n - pos) // int(cycle.min()) + 1, 1 << 20)
        predicted = np.tile(cycle, count // period + 1)[:count]
        starts = pos + np.concatenate(([0], np.cumsum(predicted[:-1])))
        fits = starts + predicted <= n
        starts, predicted = starts[fits], predicted[fits]
        if not len(starts):
            continue
        fields = windows(arr, 8)[starts].view("<u8").reshape(-1)
        wrong = np.flatnonzero(fields != (predicted - overhead).astype(np.uint64))
        keep = int(wrong[0]) if len(wrong) else len(starts)
        if keep:
            chunks.append(starts[:keep])
            pos = int(starts[keep - 1] + predicted[keep - 1])


def _period(sizes: np.ndarray) -> int | None:
    """The shortest period with which the last record sizes repeat, if any."""
    for period in range(1, min(_MAX_PERIOD, len(sizes) // 2) + 1):
        if np.array_equal(sizes[-period:], sizes[-2 * period : -period]):
            return period
    return None


def _scan(
    buf: bytes, pos: int, max_record_bytes: int, most: int
) -> tuple[list[int], int, str | None]:
    """Follow up to ``most`` records from ``pos``; say why it stopped early, if it did."""
    n = len(buf)
    unpack = _U64.unpack_from
    limit = n - HEADER_SIZE
    overhead = HEADER_SIZE + FOOTER_SIZE
    found: list[int] = []
    add = found.append
    while pos <= limit and len(found) < most:
        length = unpack(buf, pos)[0]
        end = pos + length + overhead
        if length == 0 and _zero_header(buf, pos):  # zeros: stop now, not 16 bytes at a time
            return found, pos, "zero"
        if length > max_record_bytes or end > n:
            # Only now is one header checked alone: a garbage length must not pass as "not yet".
            if not _header_ok(buf, pos):
                return found, pos, "zero" if _zero_header(buf, pos) else "length_crc"
            if length > max_record_bytes:
                return found, pos, "too_long"
            return found, pos, None
        add(pos)
        pos = end
    return found, pos, None


def _header_ok(buf: bytes, pos: int) -> bool:
    (crc,) = _FOOTER.unpack_from(buf, pos + 8)
    return masked_crc32c(buf[pos : pos + 8]) == crc


def _zero_header(buf: bytes, pos: int) -> bool:
    """A zero-filled header: space allocated but not yet written (pending, not corrupt)."""
    return buf[pos : pos + HEADER_SIZE] == b"\0" * HEADER_SIZE


def read_block(
    stream: BinaryIO,
    offset: int,
    *,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    block_bytes: int = 1024 * 1024,  # bigger blocks: more decoding memory at once, no faster
) -> RecordBlock:
    """Read and frame the records from ``offset``: up to about ``block_bytes`` of them.

    A single record larger than ``block_bytes`` (but within ``max_record_bytes``) is still
    read whole, once it is complete. Call again from ``end_offset`` until it stops advancing.
    """
    stream.seek(offset)
    buf = stream.read(block_bytes)
    block = frame_block(buf, offset, max_record_bytes)
    if len(block) or block.stopped or len(buf) < block_bytes:  # progress, a stop, or the end
        return block
    # The first record does not fit in ``block_bytes``: read exactly what it needs, once the
    # stream holds all of it (a length is never allocated before its bytes are there).
    if len(buf) < HEADER_SIZE:
        buf += stream.read(HEADER_SIZE - len(buf))
    if len(buf) >= HEADER_SIZE:
        (length,) = _U64.unpack_from(buf, 0)
        need = HEADER_SIZE + length + FOOTER_SIZE - len(buf)
        available = stream.seek(0, io.SEEK_END) - offset - len(buf)
        if length <= max_record_bytes and 0 < need <= available:
            stream.seek(offset + len(buf))
            buf += stream.read(need)
    return frame_block(buf, offset, max_record_bytes)


def read_records(
    stream: BinaryIO,
    offset: int,
    *,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    chunk_size: int = 64 * 1024 * 1024,
) -> ReadResult:
    """Read every complete record of ``stream`` from ``offset`` to its current end.

    A partial record at the end is left for a later call ("not yet", not an error).
    A record whose data CRC fails is skipped and reported; a bad length CRC or a length
    above ``max_record_bytes`` stops the read at the last good offset and is reported.
    """
    records: list[bytes] = []
    problems: list[RecordProblem] = []
    while True:
        block = read_block(
            stream, offset, max_record_bytes=max_record_bytes, block_bytes=chunk_size
        )
        records += block.records()
        problems += block.problems
        advanced = block.end_offset > offset
        offset = block.end_offset
        if block.stopped or not advanced:
            return ReadResult(records, offset, problems, block.pending_bytes, block.stopped)


def iter_records(stream: BinaryIO) -> Iterator[bytes]:
    """Yield every intact record of a whole stream (a convenience for tests and tools)."""
    yield from read_records(stream, 0).records
