"""SSE frames of live events: encoded once for every reader of the same event, bounded."""

from __future__ import annotations

import json

from orchestrator.entrypoints.web.streams import FrameCache, sse_frame


def _encode(item: object) -> str:
    return sse_frame("chunk", {"chunk": item}, 7)


def test_the_same_event_object_is_encoded_once_for_every_reader() -> None:
    """A second reader of the same object gets the same frame without encoding it again."""
    cache = FrameCache()
    event, twin = ["hello"], ["hello"]
    first = cache.frame(event, _encode)
    assert cache.frame(event, _encode) is first
    assert cache.encoded == 1
    assert cache.frame(twin, _encode) == first  # an equal but other object is encoded anew
    assert cache.encoded == 2
    assert first == 'id: 7\nevent: chunk\ndata: {"chunk":["hello"]}\n\n'
    assert json.loads(first.split("data: ", 1)[1]) == {"chunk": ["hello"]}


def test_the_cache_forgets_past_its_count_and_size_bounds() -> None:
    """Past its count or size bound it starts over; a frame over the size bound is not held."""
    cache = FrameCache(limit=2, limit_chars=200)
    events = [["a"], ["b"], ["c"]]
    for event in events:
        cache.frame(event, _encode)
    cache.frame(events[0], _encode)  # forgotten when the third came
    assert cache.encoded == 4
    huge = ["x" * 500]
    cache.frame(huge, _encode)
    cache.frame(huge, _encode)
    assert cache.encoded == 6
