"""Hop stamps for ``relay.py --hops``: when each stamped word passes each stage of the relay.

:func:`install`, called in the server or the machine process when
``HOPS_VARIABLE`` names a folder, wraps the functions every live delta passes
through, without changing them:

- machine ``in``: a chunk of opencode's ``GET /event`` reaches the SSE parser;
- machine ``out``: a frame (or batch of frames) leaves for the server's WebSocket;
- server ``in``: a frame from the machine's WebSocket is handled;
- server ``out``: a write to a browser's SSE response.

Each stage writes ``WORD TIME TOGETHER`` lines (``time.perf_counter``: CLOCK_MONOTONIC,
one clock for every process on the host; how many new words came in the same call)
for the first time it sees each word, to
``FOLDER/STAGE-PID.txt``, flushed at least every half second. The wrappers cost
a regular expression over the text they pass on: a run with ``--hops`` is a
little slower than one without, so its overall figures are not the ones to quote.
"""

from __future__ import annotations

import inspect
import itertools
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from functools import wraps
from pathlib import Path
from typing import IO, Any

import attrs

HOPS_VARIABLE = "ORCHESTRATOR_BENCH_HOPS"
#: The stages in the order a word passes them.
STAGES = ("machine_in", "machine_out", "server_in", "server_out")
_WORD = re.compile(r"w\d{7}")
FLUSH_SECONDS = 0.5


class _Stamps:
    """The words one process has seen at its stages, appended to one file per stage."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._files: dict[str, IO[str]] = {}
        self._seen: dict[str, set[str]] = {}
        self._flushed = 0.0

    def mark(self, stage: str, text: str) -> None:
        now = time.perf_counter()
        out = self._files.get(stage)
        if out is None:
            out = self._files[stage] = (self._folder / f"{stage}-{os.getpid()}.txt").open("a")
            self._seen[stage] = set()
        seen = self._seen[stage]
        new = [word for word in dict.fromkeys(_WORD.findall(text)) if word not in seen]
        seen.update(new)
        for word in new:  # with how many words came together
            out.write(f"{word} {now:.6f} {len(new)}\n")
        if now - self._flushed > FLUSH_SECONDS:
            self._flushed = now
            for each in self._files.values():
                each.flush()


def _wrap(owner: Any, name: str, stamps: _Stamps, stage: str, text: Callable[..., str]) -> None:
    original = getattr(owner, name)

    if inspect.iscoroutinefunction(original):

        @wraps(original)
        async def wrapped_async(*args: Any, **kwargs: Any) -> Any:
            stamps.mark(stage, text(*args, **kwargs))
            return await original(*args, **kwargs)

        setattr(owner, name, wrapped_async)
    else:

        @wraps(original)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            stamps.mark(stage, text(*args, **kwargs))
            return original(*args, **kwargs)

        setattr(owner, name, wrapped)


def install(side: str, environ: Mapping[str, str] = os.environ) -> None:
    """Wrap this process's stages (``side``: "machine" or "server") if hops are asked for."""
    folder = environ.get(HOPS_VARIABLE)
    if not folder:
        return
    stamps = _Stamps(Path(folder))
    if side == "machine":
        from orchestrator.adapters.opencode._server import SseParser
        from orchestrator.adapters.remote.live import LiveOutbox

        _wrap(SseParser, "feed", stamps, "machine_in", lambda self, chunk: chunk.decode())
        _wrap(LiveOutbox, "_write", stamps, "machine_out", lambda self, frame: frame)
    else:
        from orchestrator.entrypoints.web.machine_api import _Channel
        from orchestrator.entrypoints.web.streams import EventStream

        _wrap(_Channel, "handle", stamps, "server_in", lambda self, raw, tg: raw)
        _wrap(EventStream, "write_frames", stamps, "server_out", lambda self, f: "".join(f))


@attrs.frozen
class Seen:
    """Each stage's words: when each was first seen there, and with how many others."""

    times: dict[str, dict[str, float]]
    together: dict[str, dict[str, int]]


def read(folder: Path) -> Seen:
    """What every stage wrote to ``folder``."""
    seen = Seen({stage: {} for stage in STAGES}, {stage: {} for stage in STAGES})
    for path in folder.glob("*-*.txt"):
        stage = path.name.rsplit("-", 1)[0]
        times = seen.times.setdefault(stage, {})
        together = seen.together.setdefault(stage, {})
        for line in path.read_text().splitlines():
            word, at, count = line.split()
            if word not in times:
                times[word], together[word] = float(at), int(count)
    return seen


def report(
    seen: Seen,
    agent: Mapping[str, float],
    browser: Mapping[str, float],
    words: Iterable[str],
    pct: Callable[[list[float], float], float],
) -> str:
    """One line: each hop's p50/p99 in ms (``pct`` gives ms of seconds), over the words
    every reader and stage saw."""
    points = [("opencode", agent), *((s, seen.times[s]) for s in STAGES), ("browser", browser)]
    complete = [w for w in words if all(w in times for _, times in points)]
    if not complete:
        return "  hops: no word was seen at every stage"
    hops = []
    for (before, early), (after, late) in itertools.pairwise(points):
        spent = [late[w] - early[w] for w in complete]
        hops.append(f"{before}->{after} {pct(spent, 0.5):.1f}/{pct(spent, 0.99):.1f}")
    burst = sorted(seen.together["machine_in"][w] for w in complete)[len(complete) // 2]
    return (
        f"  hops p50/p99 ms ({len(complete)} words): " + ", ".join(hops) + "\n"
        f"  (the median word reached the machine in one read with {burst - 1} others)"
    )
