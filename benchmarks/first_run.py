"""Time the README's run command from a fresh checkout: first start, then a second start.

Run from the repository root: ``python -m benchmarks.first_run [--npm] [--cold-pip]``.
Each start is timed from launching ``./run serve`` until ``GET /login`` answers 200,
with Debian's own python3 (pyenv off PATH) and an empty HOME. By default opencode's
node_modules are hard-linked from this checkout and pip's download cache is shared;
``--npm`` installs opencode from npm, ``--cold-pip`` downloads every wheel.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.integration.first_run import (
    debian_environment,
    fresh_checkout,
    share_opencode_modules,
    start_serve,
    stop,
)
from tests.integration.harness import free_port


def timed_start(checkout: Path, env: dict[str, str], root: Path, log: Path) -> float:
    """Seconds from ``./run serve`` to the sign-in page answering."""
    port = free_port()
    began = time.perf_counter()
    process = start_serve(checkout, env, "--port", str(port), "--root", str(root))
    try:
        while True:
            if process.poll() is not None:
                raise SystemExit(f"./run serve exited {process.returncode}; see {log}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as page:
                    if page.status == 200:
                        return time.perf_counter() - began
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
    finally:
        stop(process)
        assert process.stdout is not None
        with log.open("a") as out:
            out.write(process.stdout.read())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--npm", action="store_true", help="install opencode from npm too")
    parser.add_argument("--cold-pip", action="store_true", help="an empty pip download cache")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="first-run-") as tmp:
        base = Path(tmp)
        checkout = fresh_checkout(base / "repo")
        if not args.npm:
            share_opencode_modules(checkout)
        env = debian_environment(base / "home")
        if args.cold_pip:
            env["PIP_CACHE_DIR"] = str(base / "pip-cache")
        root = base / "home" / "projects"
        root.mkdir(parents=True)
        log = base / "serve.log"
        first = timed_start(checkout, env, root, log)
        second = timed_start(checkout, env, root, log)
        print(f"first start:  {first:5.1f} s  (venv, nox, packages{', npm' if args.npm else ''})")
        print(f"second start: {second:5.1f} s  (nothing reinstalled)")


if __name__ == "__main__":
    main()
