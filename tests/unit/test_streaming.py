"""Coalescing deltas into chunks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.application.streaming import ChunkCoalescer, PartTextStream, split_text
from orchestrator.domain.parts import TextKind
from orchestrator.testing.waiting import until


def recording(
    before: Callable[[], Awaitable[object]] | None = None,
) -> tuple[list[str], Callable[[str], Awaitable[None]]]:
    """A list, and a write that appends each piece to it (having awaited ``before``, if given)."""
    written: list[str] = []

    async def write(piece: str) -> None:
        if before is not None:
            await before()
        written.append(piece)

    return written, write


@given(st.text(), st.integers(min_value=1, max_value=50))
def test_split_text_keeps_every_character_in_bounded_pieces(text: str, size: int) -> None:
    """Pieces join back to the text and none is longer than the limit."""
    pieces = split_text(text, size)
    assert "".join(pieces) == text
    assert all(0 < len(p) <= size for p in pieces)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=30), max_size=40), st.integers(min_value=1, max_value=64))
def test_coalescing_loses_and_reorders_nothing(deltas: list[str], max_chars: int) -> None:
    """Whatever the deltas, the flushed pieces concatenate to their text, each within the size."""
    written, write = recording()

    async def main() -> None:
        async with ChunkCoalescer(write, window=0.001, max_chars=max_chars) as chunks:
            for delta in deltas:
                await chunks.add(delta)

    anyio.run(main)
    assert "".join(written) == "".join(deltas)
    assert all(0 < len(p) <= max_chars for p in written)


@pytest.mark.anyio
async def test_small_deltas_within_a_window_become_one_write() -> None:
    """A burst of tokens inside one window costs one backend write, not one per token."""
    written, write = recording()
    async with ChunkCoalescer(write, window=10, max_chars=1000) as chunks:
        for _ in range(100):
            await chunks.add("tok ")
    assert written == ["tok " * 100]
    assert chunks.writes == 1


@pytest.mark.anyio
async def test_window_flushes_without_waiting_for_the_end() -> None:
    """Text buffered longer than the window is written while the reply goes on."""
    written, write = recording()
    async with ChunkCoalescer(write, window=0.01, max_chars=1000) as chunks:
        await chunks.add("hello")
        await until(lambda: written, seconds=2)
        assert written == ["hello"]
        await chunks.add(" world")
    assert "".join(written) == "hello world"


@pytest.mark.anyio
async def test_first_delta_after_a_quiet_spell_is_written_at_once() -> None:
    """The reader sees a reply start without waiting for a window; later deltas are batched."""
    written, write = recording()
    async with ChunkCoalescer(write, window=5, max_chars=1000) as chunks:
        await chunks.add("first")
        await until(lambda: written, seconds=1, interval=0.001)  # far less than the 5 s window
        for _ in range(10):
            await chunks.add(".")
            await anyio.sleep(0.001)
        assert written == ["first"]  # the rest waits for the window (or the end)
    assert written == ["first", ".........."]


@pytest.mark.anyio
async def test_closing_never_cuts_off_a_write_in_progress() -> None:
    """A slow write that is running when the coalescer closes still completes, in order."""
    started = anyio.Event()

    async def slowly() -> None:
        started.set()
        await anyio.sleep(0.05)

    written, slow_write = recording(before=slowly)
    async with ChunkCoalescer(slow_write, window=0.001, max_chars=1000) as chunks:
        await chunks.add("in flight")
        await started.wait()
        await chunks.add(" and the rest")
    assert written == ["in flight", " and the rest"]


@pytest.mark.anyio
async def test_a_flush_that_gives_up_on_a_slow_backend_keeps_its_text_for_the_next() -> None:
    """A write past the flush timeout leaves its text buffered: later text follows it, no hole."""
    backend_up = anyio.Event()
    written, write = recording(before=backend_up.wait)
    async with ChunkCoalescer(write, window=0.001, max_chars=8, flush_timeout=0.05) as chunks:
        await chunks.add("w1 w2 ")
        await chunks.flush()  # the backend is down: gives up, keeps the text
        await chunks.add("w3 w4 w5 ")
        await chunks.flush()
        assert written == []
        backend_up.set()
    assert "".join(written) == "w1 w2 w3 w4 w5 "
    assert all(len(p) <= 8 for p in written)


@pytest.mark.anyio
async def test_a_part_whose_text_is_not_written_yet_is_never_written_as_the_next_part() -> None:
    """Backend down at a part switch: the next part waits until the first one's text is written."""
    written: list[tuple[str, TextKind, int, str]] = []
    backend_up = anyio.Event()

    async def write(part_id: str, kind: TextKind, offset: int, text: str) -> None:
        await backend_up.wait()
        written.append((part_id, kind, offset, text))

    async def backend_returns() -> None:
        await anyio.sleep(0.2)
        backend_up.set()

    async with (
        anyio.create_task_group() as tg,
        PartTextStream(write, window=0.001, max_chars=100, flush_timeout=0.05) as stream,
    ):
        await stream.add("a", TextKind.TEXT, 0, "one ")
        await stream.flush()  # gives up: the backend is down
        tg.start_soon(backend_returns)
        await stream.add("r", TextKind.REASONING, 0, "hm")
    assert written == [("a", TextKind.TEXT, 0, "one "), ("r", TextKind.REASONING, 0, "hm")]
