"""opencode's event stream is cut into JSON events however its bytes arrive."""

from __future__ import annotations

import json

from orchestrator.adapters.opencode._server import SseParser


def _event(index: int) -> bytes:
    return f"data: {json.dumps({'type': 'message.part.delta', 'n': index})}\n\n".encode()


def test_a_burst_in_one_chunk_gives_every_event_in_order() -> None:
    """Thousands of events read at once come out whole, in order, with nothing left over."""
    parser = SseParser()
    burst = b"".join(_event(i) for i in range(5000))
    assert [e["n"] for e in parser.feed(burst)] == list(range(5000))
    assert parser.feed(b"") == []


def test_events_split_anywhere_across_chunks_are_joined() -> None:
    """An event cut mid-line, a CRLF line end and a multi-line data field all parse."""
    parser = SseParser()
    raw = _event(1) + b'data: {"type":\r\ndata: "x"}\r\n\r\n' + b": comment\n\n" + _event(2)
    events = []
    for start in range(0, len(raw), 7):
        events += parser.feed(raw[start : start + 7])
    assert events == [
        {"type": "message.part.delta", "n": 1},
        {"type": "x"},
        {"type": "message.part.delta", "n": 2},
    ]


def test_an_event_that_is_not_json_is_skipped() -> None:
    """A malformed data line is dropped; the events after it still arrive."""
    parser = SseParser()
    assert parser.feed(b"data: {nope\n\n" + _event(3)) == [{"type": "message.part.delta", "n": 3}]


def test_utf8_text_parses_and_an_event_with_a_bad_byte_is_skipped() -> None:
    """Text in UTF-8 arrives as written; an event whose bytes are not UTF-8 is dropped alone."""
    parser = SseParser()
    good = 'data: {"delta": "caf\u00e9 \u20ac"}\n\n'.encode()
    assert parser.feed(b'data: {"delta": "\xff"}\n\n' + good) == [{"delta": "caf\u00e9 \u20ac"}]


def test_any_form_of_event_gives_the_same_events_wherever_the_stream_is_cut() -> None:
    """One-line events, multi-line data, comments, other fields and UTF-8 text cut mid-character
    give the same events whether read whole or cut in two at any byte."""
    raw = (
        _event(1)
        + b'event: message\nid: 7\ndata: {"a":\ndata: 1}\n\n'
        + b": keep-alive\n\n"
        + b'data:{"tight": true}\n\n'
        + 'data: {"delta": "\u00e9t\u00e9 \u20ac"}\n\n'.encode()
        + b"\n"
        + _event(2)
    )
    expected = [
        {"type": "message.part.delta", "n": 1},
        {"a": 1},
        {"tight": True},
        {"delta": "\u00e9t\u00e9 \u20ac"},
        {"type": "message.part.delta", "n": 2},
    ]
    assert SseParser().feed(raw) == expected
    for cut in range(len(raw) + 1):
        parser = SseParser()
        assert parser.feed(raw[:cut]) + parser.feed(raw[cut:]) == expected, cut
