"""RESP command streams: what the Redis/Upstash backup writes and the restore reads back."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lastgood.engines.resp import RespProtocolError, encode_command, encode_commands, iter_commands


def test_encode_command_writes_a_resp_array_of_bulk_strings() -> None:
    # Given a command with text, bytes and an integer
    # When it is encoded
    data = encode_command(["SET", b"k\xff", 12])
    # Then it is exactly what redis-cli --pipe sends
    assert data == b"*3\r\n$3\r\nSET\r\n$2\r\nk\xff\r\n$2\r\n12\r\n"


def test_encode_command_refuses_an_empty_command_and_booleans() -> None:
    with pytest.raises(ValueError):
        encode_command([])
    with pytest.raises(TypeError):
        encode_command(["SET", "k", True])


@given(
    st.lists(
        st.lists(st.binary(max_size=300), min_size=1, max_size=6),
        max_size=30,
    ),
    st.integers(min_value=1, max_value=64),
)
def test_any_binary_commands_round_trip_whatever_the_read_size(
    commands: list[list[bytes]], chunk: int
) -> None:
    # Given arbitrary binary arguments (CRLF, NUL, invalid UTF-8 included)
    stream = io.BytesIO(encode_commands(commands))
    # When read back in small chunks
    parsed = list(iter_commands(stream, chunk_size=chunk))
    # Then every command comes back byte for byte
    assert parsed == commands


@pytest.mark.parametrize(
    "data",
    [
        b"*2\r\n$3\r\nGET\r\n",  # missing argument
        b"*1\r\n$5\r\nGET\r\n",  # short bulk string
        b"*1\r\n$3\r\nGETXX",  # no CRLF after the bulk string
        b"+OK\r\n",  # a reply, not a command
        b"*x\r\n",  # bad length
        b"*0\r\n",  # empty command
        b"*1\r\n$3\r\nGET",  # truncated
    ],
)
def test_malformed_or_truncated_streams_raise_a_protocol_error(data: bytes) -> None:
    with pytest.raises(RespProtocolError):
        list(iter_commands(io.BytesIO(data)))


def test_an_empty_stream_has_no_commands() -> None:
    assert list(iter_commands(io.BytesIO(b""))) == []
