"""The pgoutput decoder and the SQL replay builds from it (pure: bytes in, statements out)."""

from __future__ import annotations

import struct

import pytest
from lastgood.pitr import pgoutput as pg
from lastgood.pitr.replay import ReplayError, statements
from lastgood.pitr.segments import FrameReader, frame


def _s(text: str) -> bytes:
    return text.encode() + b"\x00"


def _tuple(*values: str | object | None) -> bytes:
    out = struct.pack(">h", len(values))
    for value in values:
        if value is None:
            out += b"n"
        elif value is pg.UNCHANGED:
            out += b"u"
        else:
            data = str(value).encode()
            out += b"t" + struct.pack(">i", len(data)) + data
    return out


RELATION = (
    b"R" + struct.pack(">I", 16400) + _s("public") + _s("items") + b"d" + struct.pack(">h", 3)
    + b"\x01" + _s("id") + struct.pack(">Ii", 23, -1)
    + b"\x00" + _s("body") + struct.pack(">Ii", 25, -1)
    + b"\x00" + _s("note") + struct.pack(">Ii", 25, -1)
)  # fmt: skip


def _rels() -> dict[int, pg.Relation]:
    rel = pg.decode(RELATION)
    assert isinstance(rel, pg.Relation)
    return {rel.relid: rel}


def test_begin_commit_and_relation_decode_with_times_lsns_and_key_flags() -> None:
    begin = pg.decode(b"B" + struct.pack(">QqI", 0x1_0000_0010, 1_000_000, 777))
    assert begin == pg.Begin(0x1_0000_0010, pg.pg_time(1_000_000), 777)
    commit = pg.decode(b"C" + struct.pack(">BQQq", 0, 5, 9, 2_000_000))
    assert isinstance(commit, pg.Commit) and (commit.commit_lsn, commit.end_lsn) == (5, 9)
    rel = _rels()[16400]
    assert rel.qualified == "public.items" and [c.key for c in rel.columns] == [True, False, False]
    assert pg.lsn_str(0x1_0000_0010) == "1/10" and pg.parse_lsn("1/10") == 0x1_0000_0010


def test_truncated_or_unknown_messages_are_decode_errors() -> None:
    with pytest.raises(pg.DecodeError):
        pg.decode(b"B\x00\x01")
    with pytest.raises(pg.DecodeError):
        pg.decode(b"Z")
    with pytest.raises(ValueError):
        pg.parse_lsn("nonsense")


def test_an_update_leaves_unchanged_toast_and_the_key_out_of_its_set_list() -> None:
    msg = pg.decode(b"U" + struct.pack(">I", 16400) + b"N" + _tuple("7", pg.UNCHANGED, "new note"))
    assert isinstance(msg, pg.Update) and msg.new[1] is pg.UNCHANGED
    ((stmt, params, one),) = statements(msg, _rels())
    text = stmt.as_string(None)
    assert text == 'UPDATE "public"."items" SET "note" = %s WHERE "id" = %s'
    assert params == ["new note", "7"] and one


def test_a_key_change_uses_the_old_key_and_a_delete_is_keyed_by_it() -> None:
    msg = pg.decode(
        b"U" + struct.pack(">I", 16400) + b"K" + _tuple("1", None, None) + b"N" + _tuple("2", "b", None)
    )
    ((stmt, params, _),) = statements(msg, _rels())
    assert stmt.as_string(None).endswith('WHERE "id" = %s') and params[-1] == "1" and "2" in params
    delete = pg.decode(b"D" + struct.pack(">I", 16400) + b"K" + _tuple("2", None, None))
    ((dstmt, dparams, _),) = statements(delete, _rels())
    assert dstmt.as_string(None) == 'DELETE FROM "public"."items" WHERE "id" = %s' and dparams == ["2"]


def test_insert_keeps_nulls_and_truncate_keeps_its_options() -> None:
    insert = pg.decode(b"I" + struct.pack(">I", 16400) + b"N" + _tuple("3", None, "x"))
    ((stmt, params, _),) = statements(insert, _rels())
    assert "OVERRIDING SYSTEM VALUE" in stmt.as_string(None) and params == ["3", None, "x"]
    trunc = pg.decode(b"T" + struct.pack(">iBI", 1, 3, 16400))
    ((tstmt, _, _),) = statements(trunc, _rels())
    assert tstmt.as_string(None) == 'TRUNCATE "public"."items" RESTART IDENTITY CASCADE'


def test_a_change_without_its_relation_message_is_refused() -> None:
    insert = pg.decode(b"I" + struct.pack(">I", 99) + b"N" + _tuple("3"))
    with pytest.raises(ReplayError, match="without its relation message"):
        statements(insert, {})


def test_frames_split_across_parts_are_stitched_and_a_cut_one_is_reported() -> None:
    stream = frame(1, b"abc") + frame(2, b"defgh") + frame(3, b"")
    reader = FrameReader("t")
    got = [f for i in range(0, len(stream), 4) for f in reader.feed(stream[i : i + 4])]
    reader.finish()
    assert got == [(1, b"abc"), (2, b"defgh"), (3, b"")]
    cut = FrameReader("t")
    list(cut.feed(stream[:-3]))
    with pytest.raises(Exception, match="ends inside a frame"):
        cut.finish()
