"""TFRecord framing: known vectors, TensorFlow's own bytes, and every way a file can be cut."""

from __future__ import annotations

import io
import struct
import tracemalloc
from pathlib import Path

import google_crc32c
import numpy as np
import pytest

from kboard.tfevents.records import (
    HEADER_SIZE,
    combine_equal_crcs,
    crc32c,
    encode_record,
    frame_block,
    masked_crc32c,
    read_records,
)

PAYLOADS = [b"", b"a", b"hello world", bytes(range(256)) * 40]


def stream_of(*records: bytes) -> io.BytesIO:
    return io.BytesIO(b"".join(encode_record(r) for r in records))


def test_crc32c_is_the_c_implementation() -> None:
    assert google_crc32c.implementation == "c"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # The CRC-32C check value and the iSCSI vectors of RFC 3720, appendix B.4.
        (b"123456789", 0xE3069283),
        (b"\x00" * 32, 0x8A9136AA),
        (b"\xff" * 32, 0x62A8AB43),
        (bytes(range(32)), 0x46DD794E),
        (bytes(range(31, -1, -1)), 0x113FDB5C),
    ],
)
def test_crc32c_known_vectors(data: bytes, expected: int) -> None:
    assert crc32c(data) == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # Read from the footers and header of a file written by tf.io.TFRecordWriter.
        (b"", 0xA282EAD8),
        (b"123456789", 0xC78AB0E5),
        (struct.pack("<Q", 9), 0x3971F937),
    ],
)
def test_masked_crc_known_vectors(data: bytes, expected: int) -> None:
    assert masked_crc32c(data) == expected


def test_encoding_matches_tensorflow_bytes(tmp_path: Path) -> None:
    tf = pytest.importorskip("tensorflow")
    path = tmp_path / "tf.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for payload in PAYLOADS:
            writer.write(payload)
    assert path.read_bytes() == b"".join(encode_record(p) for p in PAYLOADS)


def test_tensorflow_reads_what_we_frame(tmp_path: Path) -> None:
    tf = pytest.importorskip("tensorflow")
    path = tmp_path / "ours.tfrecord"
    path.write_bytes(b"".join(encode_record(p) for p in PAYLOADS))
    assert [r.numpy() for r in tf.data.TFRecordDataset(str(path))] == PAYLOADS


def test_round_trip_and_offsets() -> None:
    stream = stream_of(*PAYLOADS)
    result = read_records(stream, 0)
    assert result.records == PAYLOADS
    assert result.end_offset == len(stream.getvalue())
    assert result.problems == [] and result.pending_bytes == 0 and not result.stopped


def test_small_chunks_read_the_same() -> None:
    stream = stream_of(*PAYLOADS)
    assert read_records(stream, 0, chunk_size=3).records == PAYLOADS


def test_empty_file() -> None:
    result = read_records(io.BytesIO(b""), 0)
    assert result.records == [] and result.end_offset == 0 and not result.problems


@pytest.mark.parametrize("cut", [1, 7, HEADER_SIZE - 1, HEADER_SIZE, HEADER_SIZE + 3, -1])
def test_partial_record_is_not_yet(cut: int) -> None:
    whole = encode_record(b"first") + encode_record(b"second record")
    first_len = len(encode_record(b"first"))
    stop = first_len + cut if cut > 0 else len(whole) + cut
    result = read_records(io.BytesIO(whole[:stop]), 0)
    assert result.records == [b"first"]
    assert result.end_offset == first_len
    assert result.pending_bytes == stop - first_len
    assert not result.problems and not result.stopped
    # Once complete, the record is read from the saved offset, exactly once.
    rest = read_records(io.BytesIO(whole), result.end_offset)
    assert rest.records == [b"second record"]


def test_record_written_one_byte_at_a_time() -> None:
    whole = b"".join(encode_record(p) for p in PAYLOADS[:3])
    seen: list[bytes] = []
    offset = 0
    for size in range(len(whole) + 1):
        result = read_records(io.BytesIO(whole[:size]), offset)
        seen += result.records
        offset = result.end_offset
        assert not result.problems
    assert seen == PAYLOADS[:3]


def test_flipped_payload_byte_skips_only_that_record() -> None:
    data = bytearray(stream_of(b"one", b"two", b"three").getvalue())
    second = len(encode_record(b"one"))
    data[second + HEADER_SIZE] ^= 0x01
    result = read_records(io.BytesIO(bytes(data)), 0)
    assert result.records == [b"one", b"three"]
    assert [p.kind for p in result.problems] == ["data_crc"]
    assert result.problems[0].offset == second
    assert not result.stopped and result.end_offset == len(data)


def test_flipped_length_byte_stops_at_last_good_offset() -> None:
    data = bytearray(stream_of(b"one", b"two", b"three").getvalue())
    second = len(encode_record(b"one"))
    data[second] ^= 0x04
    result = read_records(io.BytesIO(bytes(data)), 0)
    assert result.records == [b"one"]
    assert [p.kind for p in result.problems] == ["length_crc"]
    assert result.stopped and result.end_offset == second


def test_huge_length_with_valid_crc_is_refused_without_allocating() -> None:
    length = struct.pack("<Q", 2**40)
    header = length + struct.pack("<I", masked_crc32c(length))
    stream = io.BytesIO(encode_record(b"ok") + header + b"x" * 100)
    tracemalloc.start()
    result = read_records(stream, 0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert result.records == [b"ok"]
    assert [p.kind for p in result.problems] == ["too_long"] and result.stopped
    assert peak < 64 * 1024 * 1024


def test_text_file_named_like_an_event_file() -> None:
    text = b"This is not an event file, just some notes a user saved.\n" * 3
    result = read_records(io.BytesIO(text), 0)
    assert result.records == [] and result.stopped
    assert result.problems[0].kind == "length_crc"


def test_zero_filled_tail_is_pending_not_corrupt() -> None:
    data = encode_record(b"one") + b"\0" * 64
    result = read_records(io.BytesIO(data), 0)
    assert result.records == [b"one"] and not result.problems and not result.stopped
    assert result.pending_bytes == 64


def _many(count: int = 40) -> tuple[bytearray, list[bytes], int]:
    """``count`` records of one length (checked together, not one by one) and their size."""
    payloads = [b"record %04d of one length" % i for i in range(count)]
    size = len(encode_record(payloads[0]))
    return bytearray(b"".join(encode_record(p) for p in payloads)), payloads, size


@pytest.mark.parametrize("count", [16, 17, 40, 1000])
def test_crcs_combine_into_the_crc_of_the_records_end_to_end(count: int) -> None:
    rng = np.random.default_rng(count)
    for length in (1, 7, 46, 300):
        rows = rng.integers(0, 256, (count, length), dtype=np.uint8)
        each = np.array([google_crc32c.value(r.tobytes()) for r in rows], dtype=np.uint32)
        assert combine_equal_crcs(each, length) == google_crc32c.value(rows.tobytes())


@pytest.mark.parametrize("flip", [(5,), (3, 20), (0, 39)])
def test_damage_in_records_of_one_length_is_found_record_by_record(flip: tuple[int, ...]) -> None:
    # The same byte flipped in two records of one length: a check that only XORs the records
    # together would see the two flips cancel and take both records as intact.
    data, payloads, size = _many()
    for i in flip:
        data[i * size + HEADER_SIZE + 3] ^= 0x20
    block = frame_block(bytes(data), 0)
    assert block.records() == [p for i, p in enumerate(payloads) if i not in flip]
    assert [(p.kind, p.offset) for p in block.problems] == [("data_crc", i * size) for i in flip]


def test_a_wrong_stored_crc_among_many_is_found() -> None:
    data, payloads, size = _many()
    data[12 * size + size - 1] ^= 0x01  # the stored CRC, not the data
    block = frame_block(bytes(data), 0)
    assert block.records() == payloads[:12] + payloads[13:]
    assert [p.offset for p in block.problems] == [12 * size]


def test_a_wrong_length_crc_among_many_stops_there() -> None:
    data, payloads, size = _many()
    data[25 * size + 9] ^= 0x01  # the length's CRC; the length itself is intact
    block = frame_block(bytes(data), 0)
    assert block.records() == payloads[:25]
    assert block.stopped and [p.kind for p in block.problems] == ["length_crc"]
