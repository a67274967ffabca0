"""TFRecord framing: the byte layout of TensorBoard event files.

Each record is ``uint64 length | uint32 masked_crc(length) | data | uint32 masked_crc(data)``,
little-endian, with CRC-32C (Castagnoli) masked as TensorFlow does.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import google_crc32c

HEADER_SIZE = 12
FOOTER_SIZE = 4
DEFAULT_MAX_RECORD_BYTES = 256 * 1024 * 1024
_MASK_DELTA = 0xA282EAD8
_U32 = 0xFFFFFFFF
_HEADER = struct.Struct("<QI")
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


def read_records(
    stream: BinaryIO,
    offset: int,
    *,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    chunk_size: int = 8 * 1024 * 1024,
) -> ReadResult:
    """Read every complete record of ``stream`` from ``offset`` to its current end.

    A partial record at the end is left for a later call ("not yet", not an error).
    A record whose data CRC fails is skipped and reported; a bad length CRC or a length
    above ``max_record_bytes`` stops the read at the last good offset and is reported.
    """
    records: list[bytes] = []
    problems: list[RecordProblem] = []
    stream.seek(offset)
    buf = b""
    buf_start = offset  # file offset of buf[0]
    pos = 0  # position of the next record within buf
    eof = False
    while True:
        need = HEADER_SIZE
        if len(buf) - pos >= HEADER_SIZE:
            length, length_crc = _HEADER.unpack_from(buf, pos)
            header_bytes = buf[pos : pos + 8]
            if masked_crc32c(header_bytes) != length_crc:
                if header_bytes == b"\0" * 8 and length_crc == 0:
                    # Zero-filled tail: space allocated but not yet written. Wait for it.
                    return ReadResult(records, buf_start + pos, problems, len(buf) - pos, False)
                problems.append(
                    RecordProblem(
                        buf_start + pos,
                        "length_crc",
                        f"corrupt record header at byte {buf_start + pos} "
                        "(length checksum mismatch); rest of file not read",
                        True,
                    )
                )
                return ReadResult(records, buf_start + pos, problems, 0, True)
            if length > max_record_bytes:
                problems.append(
                    RecordProblem(
                        buf_start + pos,
                        "too_long",
                        f"record at byte {buf_start + pos} claims {length} bytes, above the "
                        f"{max_record_bytes}-byte limit; rest of file not read",
                        True,
                    )
                )
                return ReadResult(records, buf_start + pos, problems, 0, True)
            need = HEADER_SIZE + length + FOOTER_SIZE
            if len(buf) - pos >= need:
                start = pos + HEADER_SIZE
                data = buf[start : start + length]
                (data_crc,) = _FOOTER.unpack_from(buf, start + length)
                if masked_crc32c(data) == data_crc:
                    records.append(data)
                else:
                    problems.append(
                        RecordProblem(
                            buf_start + pos,
                            "data_crc",
                            f"corrupt record at byte {buf_start + pos} (data checksum "
                            "mismatch); record skipped",
                            False,
                        )
                    )
                pos += need
                continue
        if eof:
            return ReadResult(records, buf_start + pos, problems, len(buf) - pos, False)
        # Keep the unread tail and read more: at least what the next record needs.
        buf = buf[pos:]
        buf_start += pos
        pos = 0
        chunk = stream.read(max(chunk_size, need - len(buf)))
        if not chunk:
            eof = True
        else:
            buf += chunk


def iter_records(stream: BinaryIO) -> Iterator[bytes]:
    """Yield every intact record of a whole stream (a convenience for tests and tools)."""
    yield from read_records(stream, 0).records
