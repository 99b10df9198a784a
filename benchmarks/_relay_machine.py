"""The machine process of ``relay.py``: what ``orchestrator worker start --server`` runs.

It also writes the address and password of the opencode server it started to a
file (0600) given on the command line, so the benchmark can read that very
server's ``GET /event`` as a second reader. Usage:
``python _relay_machine.py SERVER_URL MACHINE_TOKEN ROOT ADDRESS_FILE``.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta
from pathlib import Path

import _hops
import anyio

from orchestrator.adapters.opencode import open_opencode_runtime
from orchestrator.adapters.opencode._runtime import OpencodeRuntime
from orchestrator.adapters.remote import RemoteMachineBackend
from orchestrator.domain.ids import MachineToken
from orchestrator.entrypoints.runtime import freeze_startup_objects, machine_process
from orchestrator.entrypoints.settings import MachineSettings


async def _publish(runtime: OpencodeRuntime, path: Path) -> None:
    """Keep ``path`` listing the opencode servers that are up now."""
    written: list[dict[str, str]] = []
    while True:
        alive = [{"url": s.base_url, "password": s._password} for s in runtime._servers if s.alive]
        if alive != written:
            fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump(alive, out)
            path.with_suffix(".tmp").rename(path)
            written = alive
        await anyio.sleep(0.2)


async def main(server_url: str, token: str, root: str, address_file: str) -> None:
    settings = MachineSettings(server_url=server_url, idle_timeout=timedelta(minutes=30))
    async with (
        RemoteMachineBackend(server_url, settings) as backend,
        open_opencode_runtime(env=dict(os.environ)) as runtime,
    ):
        process = machine_process(
            backend, MachineToken.parse(token), Path(root), runtime, settings, print
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(_publish, runtime, Path(address_file))
            await process.start()
            freeze_startup_objects()  # as ``worker start`` does
            await process.run()


if __name__ == "__main__":
    _hops.install("machine")
    server_url, token, root, address_file = sys.argv[1:5]
    anyio.run(main, server_url, token, root, address_file)
