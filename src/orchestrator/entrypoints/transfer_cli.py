"""``orchestrator export`` and ``orchestrator import``: move everything to another backend.

The file format is described in :mod:`orchestrator.application.transfer`.
"""

from __future__ import annotations

import secrets
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import anyio
import typer

from orchestrator.application import transfer
from orchestrator.domain.errors import InvalidInput
from orchestrator.domain.ids import MachineToken
from orchestrator.entrypoints.cli import (
    ConvexTransport,
    ConvexUrl,
    DataDir,
    TransportName,
    echo,
    run,
    server_settings,
)
from orchestrator.entrypoints.container import bootstrap, resolve, running
from orchestrator.entrypoints.settings import DEFAULT_HOST, DEFAULT_PORT, ServerSettings

ExportFile = Annotated[
    str, typer.Argument(help="The JSON Lines file to write ('-' for standard output).")
]
ImportFile = Annotated[Path, typer.Argument(help="A file written by `orchestrator export`.")]


def _progress(line: str) -> None:
    typer.echo(line, err=True)


def repair_command(
    settings: ServerSettings, server: str, root: str | None, token: MachineToken
) -> str:
    """The one command that brings an imported machine back, with its new token."""
    words = ["orchestrator", "worker", "start", "--token", str(token)]
    if root:
        words += ["--root", root]
    if settings.convex_url:
        words += ["--convex-url", settings.convex_url]
    else:
        words += ["--server", server]
    return shlex.join(words)


def export_command(
    file: ExportFile = "-",
    data_dir: DataDir = None,
    convex_url: ConvexUrl = None,
    convex_transport: ConvexTransport = TransportName.websocket,
) -> None:
    """Write every account, machine, worker, chat, job and run to a JSON Lines file."""
    settings = server_settings(data_dir, convex_url=convex_url, convex_transport=convex_transport)

    async def export_to(out: anyio.AsyncFile[str]) -> int:
        async with running(bootstrap(settings)) as container:
            backend = await resolve(container.backend)
            return await transfer.write_all(transfer.export_lines(backend), out.write)

    async def main() -> None:
        if file == "-":
            count = await export_to(anyio.wrap_file(sys.stdout))
        else:
            async with await anyio.open_file(file, "w", encoding="utf-8") as out:
                count = await export_to(out)
        _progress(f"Exported {count:,} records{'' if file == '-' else f' to {file}'}.")

    run(main)


def import_command(
    file: ImportFile,
    data_dir: DataDir = None,
    convex_url: ConvexUrl = None,
    convex_transport: ConvexTransport = TransportName.websocket,
    server: Annotated[
        str, typer.Option(help="URL machines use to reach this server (embedded backend).")
    ] = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}",
) -> None:
    """Read an export into this backend; records already here are skipped (safe to re-run)."""
    settings = server_settings(data_dir, convex_url=convex_url, convex_transport=convex_transport)

    def records() -> Iterator[tuple[str, transfer.Record]]:
        # Read line by line: an export of long replies can be larger than memory allows.
        try:
            with Path(file).open(encoding="utf-8") as lines:
                yield from transfer.read_records(lines)
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"Cannot read {file}: {exc}.") from exc

    async def main() -> None:
        # A first pass checks the whole file (a bad line changes nothing) and counts it.
        total, roots = 0, dict[str, str | None]()
        for kind, record in records():
            total += 1
            if kind == "machine":
                roots[record["machineId"]] = record["rootDirectory"]
        async with running(bootstrap(settings)) as container:
            backend = await resolve(container.backend)
            if not isinstance(backend, transfer.Restorer):
                raise InvalidInput("This backend cannot import records.")
            done = await transfer.import_records(
                records(),
                backend,
                new_secret=lambda: secrets.token_urlsafe(32),
                report=_progress,
                total=total,
            )
        echo(f"Imported {done.written:,} records; {done.skipped:,} were already there.")
        if done.machines:
            echo("Machine tokens cannot move. Start each machine again with its new token:")
        for name, token in done.machines:
            command = repair_command(settings, server, roots.get(token.machine_id), token)
            echo(f"  {name}: {command}")

    run(main)


def register(app: typer.Typer) -> None:
    """Add ``export`` and ``import`` to the ``orchestrator`` command."""
    app.command("export")(export_command)
    app.command("import")(import_command)
