"""A full disk under the server's data directory mid-reply, real processes.

The data directory is a small tmpfs of its own. While opencode streams a reply
of numbered words, a filler file takes every free byte: a write through the
user API fails with a sentence (503), the database stays intact, and once the
filler is removed the reply finishes with every word once and in order -- in
the browser, the stored reply and the stored chunks.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest

from tests.integration.chat_stage import (
    signed_in,
)
from tests.integration.faults import numbered_words, watched_reply
from tests.integration.harness import NEEDS_OPENCODE

pytestmark = [pytest.mark.anyio, pytest.mark.slow, NEEDS_OPENCODE]

REPLY = numbered_words(600)


@pytest.fixture
def small_data_dir(tmp_path: Path) -> Iterator[Path]:
    """``tmp_path/data`` on a 32 MB tmpfs of its own (needs root; skipped otherwise)."""
    data = tmp_path / "data"
    data.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(data)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {mounted.stderr.strip()}")
    try:
        yield data
    finally:
        subprocess.run(["umount", "-l", str(data)], check=False)


@contextmanager
def disk_full(directory: Path) -> Iterator[Path]:
    """Fill the filesystem of ``directory`` to the last byte; free it again afterwards."""
    filler = directory / "filler"
    block = b"\0" * 65536
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while os.write(fd, block):  # a short write fills the last bytes, the next one fails
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    try:
        yield filler
    finally:
        filler.unlink()


def integrity(database: Path) -> str:
    """``PRAGMA integrity_check`` of the server's database."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


async def test_a_full_disk_mid_reply_fails_cleanly_and_loses_nothing_once_space_returns(
    tmp_path: Path, small_data_dir: Path
) -> None:
    """Disk full mid-reply: a write is refused with a sentence, the reply ends whole after."""
    async with watched_reply(tmp_path, REPLY) as turn:
        assert turn.stage.server.data_dir == small_data_dir
        async with signed_in(turn.stage.server) as api:
            with disk_full(small_data_dir):
                assert os.statvfs(small_data_dir).f_bavail == 0
                refused = await api.call(
                    "POST",
                    f"/api/sessions/{turn.session_id}/title",
                    {"title": "Renamed on a full disk"},
                    503,
                )
                assert refused["error"].endswith("."), refused
                await anyio.sleep(12)
                assert not turn.browser.done
        await turn.until_done()
        await turn.assert_exact(REPLY)
        assert integrity(small_data_dir / "orchestrator.sqlite3") == "ok"
