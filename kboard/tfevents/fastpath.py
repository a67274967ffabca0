"""Decode many records at once: numpy for the common scalar layouts, protobuf for the rest.

A scalar event from ``tf.summary``, Keras or torch is ``wall_time, step, summary`` where the
summary bytes of one tag are the same in every event but for the value. Records are grouped by
those bytes (the value masked out); the first record of each group is decoded by
:func:`~kboard.tfevents.events.decode_record` and checked by probing: its value bytes are
replaced by a sentinel and the record decoded again (twice, with two sentinels), and only if
exactly the value changes are the group's other records read with numpy. Everything else is
decoded record by record, strictly in record order, so the result always equals decoding every
record with the protobuf parser.
"""

from __future__ import annotations

import heapq
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from kboard.tfevents.events import Datum, DecodeProblem, Kind, Restart, TagInfo, decode_record
from kboard.tfevents.records import windows

_WALL_STEP_PREFIX = 10  # 0x09 + 8-byte wall_time + 0x10 (the step varint's tag)
# Two per width: a value that is not read from the window (a constant tensor_content before a
# float_val, say) may equal one sentinel by chance, but not both.
_SENTINELS = {
    4: (np.float32(1.2345678e-7).tobytes(), np.float32(-7.654321e-6).tobytes()),
    8: (np.float64(-9.87654321e-11).tobytes(), np.float64(4.2424242e-77).tobytes()),
}
_FNV_PRIME = np.uint64(1099511628211)


@dataclass
class ScalarBatch:
    """The scalar points of one tag in a block, in record order."""

    info: TagInfo
    order: np.ndarray  # record index of each point (for ordering against restarts)
    steps: np.ndarray
    wall_times: np.ndarray
    values: np.ndarray


@dataclass
class DecodedBlock:
    """A block of records, decoded: scalars as columns, everything else as data in order."""

    scalars: dict[str, ScalarBatch]
    items: list[tuple[int, Datum | Restart]]  # (record index, item), in record order
    problems: list[tuple[int, DecodeProblem]]
    fast_records: int = 0  # how many records numpy decoded (the rest went one by one)


# Layouts the probe has passed: an event's bytes after the step with the value zeroed, where
# the value is, and the tag and tag info decoding gave. The same bytes in the same tag state
# decode the same way, but for the value: later blocks (and runs) skip the probe for them.
_VERIFIED: dict[tuple[bytes, int, int], tuple[str, TagInfo]] = {}
_VERIFIED_MAX = 4096


def _layout_key(arr: np.ndarray, start: int, length: int, group: _Group) -> tuple[bytes, int, int]:
    row = bytearray(arr[start : start + length].tobytes())
    row[group.offset : group.offset + group.width] = bytes(group.width)
    return bytes(row), group.offset, group.width


@dataclass
class _Group:
    """Records with the same bytes after the step, but for a value at ``rest + offset``."""

    members: np.ndarray
    offset: int
    width: int


def decode_block(block: Any, tag_infos: MutableMapping[str, TagInfo]) -> DecodedBlock:
    """Decode every record of a :class:`~kboard.tfevents.records.RecordBlock`."""
    n = len(block)
    arr = np.frombuffer(block.buf, dtype=np.uint8)
    groups: list[_Group] = []
    if n:
        fast, steps, walls, rest, rest_len = _common_prefix(arr, block.starts, block.lengths)
        if fast.any():
            groups = _group(arr, rest, rest_len, fast)
    first_of = {int(g.members[0]): g for g in groups}
    grouped = np.zeros(n, dtype=bool)
    for g in groups:
        grouped[g.members] = True

    slow_scalars: dict[str, tuple[TagInfo, list[int], list[int], list[float], list[float]]] = {}
    fast_parts: dict[str, list[tuple[TagInfo, np.ndarray, np.ndarray]]] = {}
    items_out: list[tuple[int, Datum | Restart]] = []
    problems: list[tuple[int, DecodeProblem]] = []
    # Records decoded one by one (ungrouped ones, each group's first, and the rest of a group
    # whose first fails the check) go strictly in record order, so tag metadata is known
    # before the records that rely on it.
    queue = np.flatnonzero(~grouped).tolist() + list(first_of)
    heapq.heapify(queue)

    taken: list[tuple[_Group, str, TagInfo]] = []  # values read below, one gather per width
    while queue:
        i = heapq.heappop(queue)
        group = first_of.pop(i, None)
        key = None
        if group is not None:
            key = _layout_key(arr, int(rest[i]), int(rest_len[i]), group)
            known = _VERIFIED.get(key)
            if known is not None and tag_infos.get(known[0]) == known[1]:
                taken.append((group, *known))  # a layout the probe passed, same tag state
                continue
        data = block.record(i)
        items, probs = decode_record(data, tag_infos)
        problems.extend((i, p) for p in probs)
        if group is not None:
            at = int(rest[i] - block.starts[i]) + group.offset
            if _is_value_at(data, items, at, group.width, tag_infos) and (
                items[0].step,
                items[0].wall_time,
            ) == (int(steps[i]), float(walls[i])):
                taken.append((group, items[0].tag, items[0].info))
                if len(_VERIFIED) >= _VERIFIED_MAX:
                    _VERIFIED.clear()
                _VERIFIED[key] = (items[0].tag, items[0].info)
                continue
            for j in group.members[1:].tolist():
                heapq.heappush(queue, j)
        for item in items:
            if isinstance(item, Datum) and item.info.kind is Kind.SCALARS:
                entry = slow_scalars.setdefault(item.tag, (item.info, [], [], [], []))
                entry[1].append(i)
                entry[2].append(item.step)
                entry[3].append(item.wall_time)
                entry[4].append(item.value)
            else:
                items_out.append((i, item))

    for width in (4, 8):
        parts = [t for t in taken if t[0].width == width]
        if not parts:
            continue
        starts = np.concatenate([rest[g.members] + g.offset for g, _, _ in parts])
        values = windows(arr, width)[starts].view("<f4" if width == 4 else "<f8").reshape(-1)
        bounds = np.cumsum([len(g.members) for g, _, _ in parts])[:-1]
        for (group, tag, info), vals in zip(parts, np.split(values, bounds)):
            fast_parts.setdefault(tag, []).append((info, group.members, vals))
    scalars: dict[str, ScalarBatch] = {}
    for tag in {*slow_scalars, *fast_parts}:
        orders, step_parts, wall_parts, value_parts = [], [], [], []
        info = None
        if tag in slow_scalars:
            info, idx, s, w, v = slow_scalars[tag]
            orders.append(np.array(idx, dtype=np.int64))
            step_parts.append(np.array(s, dtype=np.int64))
            wall_parts.append(np.array(w, dtype=np.float64))
            value_parts.append(np.array(v, dtype=np.float64))
        for part_info, members, values in fast_parts.get(tag, []):
            info = info or part_info
            orders.append(members)
            step_parts.append(steps[members])
            wall_parts.append(walls[members])
            value_parts.append(values)
        if len(orders) == 1:  # one group's members: already in record order
            scalars[tag] = ScalarBatch(
                info, orders[0], step_parts[0], wall_parts[0], value_parts[0]
            )
            continue
        order = np.concatenate(orders)
        sort = np.argsort(order, kind="stable")
        with np.errstate(invalid="ignore"):  # a signalling NaN quietens, as float() does
            values = np.concatenate([v.astype(np.float64) for v in value_parts])
        scalars[tag] = ScalarBatch(
            info,
            order[sort],
            np.concatenate(step_parts)[sort],
            np.concatenate(wall_parts)[sort],
            values[sort],
        )
    items_out.sort(key=lambda pair: pair[0])
    problems.sort(key=lambda pair: pair[0])
    fast_count = sum(len(m) - 1 for parts in fast_parts.values() for _, m, _ in parts)
    return DecodedBlock(scalars, items_out, problems, fast_count)


def _common_prefix(
    arr: np.ndarray, starts: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Find records that start ``wall_time, step`` and read those two fields."""
    size = len(arr)
    ok = lengths >= _WALL_STEP_PREFIX + 1 + 4
    safe = np.where(ok, starts, 0)
    ok &= arr[safe] == 0x09
    ok &= arr[np.minimum(safe + 9, size - 1)] == 0x10
    if size >= 9:  # the 8 bytes after each 0x09, without an n-by-8 index array
        head = windows(arr, 8)[np.minimum(safe + 1, size - 8)]
    else:
        head = arr[np.minimum(safe[:, None] + np.arange(1, 9), size - 1)]
    walls = head.view("<f8").reshape(-1)
    # The step varint, one byte position at a time over the records still unfinished.
    at = np.minimum(safe + _WALL_STEP_PREFIX, size - 1)
    byte = arr[at]
    steps = (byte & 0x7F).astype(np.uint64)
    varint_len = np.ones(len(starts), dtype=np.int64)
    todo = np.flatnonzero(byte & 0x80)
    for k in range(1, 10):
        if not len(todo):
            break
        byte = arr[np.minimum(at[todo] + k, size - 1)]
        steps[todo] |= (byte & 0x7F).astype(np.uint64) << np.uint64(7 * k)
        varint_len[todo] += 1
        todo = todo[(byte & 0x80) != 0]
    ok[todo] = False  # longer than 10 bytes: not a varint
    rest = safe + _WALL_STEP_PREFIX + varint_len
    rest_len = starts + lengths - rest
    ok &= rest_len >= 5
    return ok, steps.view(np.int64), walls, rest, rest_len


def _group(
    arr: np.ndarray, rest: np.ndarray, rest_len: np.ndarray, fast: np.ndarray
) -> list[_Group]:
    """Group records whose bytes after the step are equal outside their value bytes."""
    groups: list[_Group] = []
    candidates = np.flatnonzero(fast)
    lens = rest_len[candidates]
    for length in np.unique(lens).tolist():
        members = candidates[lens == length]
        keys = windows(arr, length)[rest[members]]  # a (k, length) copy
        # Rows padded to whole 8-byte words, so they compare and hash a word at a time.
        width8 = -(-length // 8) * 8
        padded = np.zeros((len(members), width8), dtype=np.uint8)
        padded[:, :length] = keys
        remaining = np.arange(len(members))
        while len(remaining):
            first = remaining[0]
            window = value_window(keys[first].tobytes())
            if window is None:  # not a one-scalar summary: decoded one by one
                remaining = remaining[1:]
                continue
            offset, width = window
            masked = padded[remaining]
            masked[:, offset : offset + width] = 0  # the value bytes do not count
            sub = masked.view("<u8")
            cycle = _cycle(sub)
            if cycle is not None and all(
                _fits(keys[remaining[f]], masked[f], window) for f in range(cycle)
            ):
                # Tags in a fixed order: record i is like record i - period, so each group
                # is every period-th record.
                for f in range(cycle):
                    groups.append(_Group(members[remaining[f::cycle]], offset, width))
                break
            h = np.zeros(len(remaining), dtype=np.uint64)
            for word in sub.T:
                h = (h * _FNV_PRIME) ^ word
            _, firsts, inverse = np.unique(h, return_index=True, return_inverse=True)
            inverse = inverse.reshape(-1)
            same = (sub == sub[firsts][inverse]).all(axis=1)
            # Groups whose first record has another layout of the same length wait for
            # their own turn below.
            fits = np.array([_fits(keys[remaining[f]], masked[f], window) for f in firsts.tolist()])
            taken = same & fits[inverse]
            chosen = np.flatnonzero(taken)
            chosen = chosen[np.argsort(inverse[chosen], kind="stable")]  # by group, in order
            bounds = np.cumsum(np.bincount(inverse[taken], minlength=len(firsts)))
            for part in np.split(chosen, bounds[:-1]):
                if len(part):
                    groups.append(_Group(members[remaining[part]], offset, width))
            if not taken[0]:
                taken[0] = True  # never loop on a record whose layout was not grouped
            remaining = remaining[~taken]
    return groups


# Rows known to have their value at a window: (the row with that window zeroed, window).
# The bytes in the value's window are skipped by the parse, so any row equal to a known one
# outside the window has its value there too. (Only positives are kept: when the window is
# not the value, the bytes in it may well matter.)
_FITS: set[tuple[bytes, tuple[int, int]]] = set()


def _fits(raw: np.ndarray, masked: np.ndarray, window: tuple[int, int]) -> bool:
    """Whether ``value_window`` of the row ``raw`` is ``window`` (``masked``: it zeroed there)."""
    key = (masked.tobytes(), window)
    if key in _FITS:
        return True
    if value_window(raw.tobytes()) != window:
        return False
    if len(_FITS) >= _VERIFIED_MAX:
        _FITS.clear()
    _FITS.add(key)
    return True


def _cycle(rows: np.ndarray) -> int | None:
    """The period with which ``rows`` repeat exactly, when every row equals the one a period
    before it (a file that writes its tags in the same order every step), else None."""
    again = np.flatnonzero((rows[1:] == rows[0]).all(axis=1))
    if not len(again):
        return None
    period = int(again[0]) + 1
    return period if np.array_equal(rows[period:], rows[:-period]) else None


def value_window(rest: bytes) -> tuple[int, int] | None:
    """Where the one scalar value sits in an event's bytes after the step, if it is simple.

    ``rest`` must be exactly ``summary { value { tag, simple_value | tensor } }``; the result
    is ``(offset, width)`` of a float32 or float64 value, or None for anything else.
    """
    try:
        pos, end = _expect(rest, 0, 0x2A)  # Event.summary
        if end != len(rest):
            return None
        pos, end = _expect(rest, pos, 0x0A)  # Summary.value (exactly one)
        if end != len(rest):
            return None
        window = None
        while pos < end:
            key, pos = _varint(rest, pos)
            if key == 0x15:  # simple_value: fixed32
                window = (pos, 4)
                pos += 4
            elif key == 0x42:  # tensor
                length, pos = _varint(rest, pos)
                window = _tensor_window(rest, pos, pos + length)
                if window is None:
                    return None
                pos += length
            else:
                pos = _skip(rest, pos, key & 7)
        return window if pos == end else None
    except IndexError:
        return None


def _tensor_window(buf: bytes, pos: int, end: int) -> tuple[int, int] | None:
    window = None
    while pos < end:
        key, pos = _varint(buf, pos)
        if key in (0x22, 0x2A, 0x32):  # tensor_content, packed float_val, packed double_val
            length, pos = _varint(buf, pos)
            if (
                length not in (4, 8)
                or (key == 0x2A and length != 4)
                or (key == 0x32 and length != 8)
            ):
                return None
            window = (pos, length)
            pos += length
        elif key == 0x2D:  # one unpacked float_val
            window, pos = (pos, 4), pos + 4
        elif key == 0x31:  # one unpacked double_val
            window, pos = (pos, 8), pos + 8
        else:
            pos = _skip(buf, pos, key & 7)
    return window if pos == end else None


def _expect(buf: bytes, pos: int, key: int) -> tuple[int, int]:
    found, pos = _varint(buf, pos)
    if found != key:
        raise IndexError
    length, pos = _varint(buf, pos)
    return pos, pos + length


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise IndexError


def _skip(buf: bytes, pos: int, wire_type: int) -> int:
    if wire_type == 0:
        return _varint(buf, pos)[1]
    if wire_type == 1:
        return pos + 8
    if wire_type == 2:
        length, pos = _varint(buf, pos)
        return pos + length
    if wire_type == 5:
        return pos + 4
    raise IndexError


def _is_value_at(
    data: bytes,
    items: list[Datum | Restart],
    at: int,
    width: int,
    tag_infos: MutableMapping[str, TagInfo],
) -> bool:
    """Check with the protobuf parser that ``data[at:at+width]`` is the record's one value."""
    if len(items) != 1 or not isinstance(items[0], Datum):
        return False
    item = items[0]
    if item.info.kind is not Kind.SCALARS or at + width > len(data):
        return False
    for sentinel in _SENTINELS[width]:
        probe = data[:at] + sentinel + data[at + width :]
        try:
            probed, probs = decode_record(probe, dict(tag_infos))
        except Exception:  # noqa: BLE001 - any failure just means "not this layout"
            return False
        if probs or len(probed) != 1 or not isinstance(probed[0], Datum):
            return False
        got = probed[0]
        expected = float(np.frombuffer(sentinel, "<f4" if width == 4 else "<f8")[0])
        if (got.tag, got.info, got.step, got.wall_time) != (
            item.tag,
            item.info,
            item.step,
            item.wall_time,
        ) or got.value != expected:
            return False
    return True
