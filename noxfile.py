"""Developer tasks: ``nox`` runs lint, typecheck and tests; ``nox -s serve`` runs the product."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import nox

OPENCODE_DIR = Path("tools/opencode")
CONVEX_DIR = Path("backend_convex")

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True


#: The files whose content decides whether a session's Python packages are current.
INSTALL_INPUTS = (Path("pyproject.toml"),)


def install(session: nox.Session, *args: str) -> None:
    """``session.install(*args)``, skipped when the same was installed from the same inputs."""
    digest = hashlib.sha256(repr(args).encode())
    for path in INSTALL_INPUTS:
        digest.update(path.read_bytes())
    name = hashlib.sha256(repr(args).encode()).hexdigest()[:12]
    stamp = session.env_dir / f".installed-{name}"
    if stamp.is_file() and stamp.read_text() == digest.hexdigest():
        session.log(f"{' '.join(args)} is current; not reinstalling")
        return
    session.install(*args)
    stamp.write_text(digest.hexdigest())


def npm_is_current(directory: Path) -> bool:
    """Whether ``directory``'s node_modules was installed after its package-lock.json changed."""
    stamp = directory / "node_modules" / ".package-lock.json"
    lock = directory / "package-lock.json"
    return stamp.exists() and stamp.stat().st_mtime >= lock.stat().st_mtime


def install_opencode(session: nox.Session) -> None:
    """The pinned opencode CLI from npm, into tools/opencode (skipped when current)."""
    if npm_is_current(OPENCODE_DIR):
        return
    # `npm install --no-save` rather than `npm ci`: the registry lists platform
    # packages of opencode-ai that it cannot serve, which `npm ci` takes for a stale lock.
    session.run(
        "npm",
        "install",
        "--no-save",
        "--no-audit",
        "--no-fund",
        "--prefix",
        str(OPENCODE_DIR),
        external=True,
    )


def check_convex_backend(session: nox.Session) -> None:
    """The Convex functions: npm ci, tsc, _generated is current, vitest (the harness needs them)."""
    npm = ("npm", "--prefix", str(CONVEX_DIR))
    if not npm_is_current(CONVEX_DIR):
        session.run(*npm, "ci", "--no-audit", "--no-fund", external=True)
    session.run(*npm, "run", "typecheck", external=True)
    session.run(*npm, "run", "check-codegen", external=True)
    session.run(*npm, "test", external=True)


def install_chromium(session: nox.Session) -> None:
    """Debian's chromium, which Playwright drives in the browser tests (never its own build)."""
    if Path("/usr/bin/chromium").exists():
        return
    session.run("apt-get", "update", external=True)
    session.run("apt-get", "install", "-y", "--no-install-recommends", "chromium", external=True)


def install_systemd_tools(session: nox.Session) -> None:
    """systemd-analyze, which checks the unit `worker install-service` writes (from apt)."""
    if shutil.which("systemd-analyze"):
        return
    session.run("apt-get", "update", external=True)
    session.run("apt-get", "install", "-y", "--no-install-recommends", "systemd", external=True)


@nox.session
def tests(session: nox.Session) -> None:
    """Run every test with coverage (fails under 80 %)."""
    install_opencode(session)
    install_chromium(session)
    install_systemd_tools(session)
    check_convex_backend(session)
    install(session, "-e", ".[test]")
    session.run("coverage", "erase")
    session.run(
        "pytest",
        "--cov",
        "--cov-report=term",
        "--cov-fail-under=80",
        *session.posargs,
    )


@nox.session
def quick(session: nox.Session) -> None:
    """The fast tests: no real processes, no Convex harness, no npm or apt (a minute or two)."""
    install(session, "-e", ".[test]")
    session.run(
        "pytest",
        "-m",
        "not slow",
        "-k",
        "not convex",
        "-p",
        "no:cacheprovider",
        "-q",
        *session.posargs,
    )


@nox.session
def screenshots(session: nox.Session) -> None:
    """Take the README's pictures (docs/screenshots) with the browser test of a real turn."""
    install_opencode(session)
    install_chromium(session)
    install(session, "-e", ".[test]")
    target = Path("docs/screenshots").resolve()
    env = {"ORCHESTRATOR_SCREENSHOTS": str(target)}
    session.run("pytest", "tests/e2e/test_turn_changes.py", "-p", "no:cacheprovider", env=env)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    install(session, "ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over src, tests and benchmarks."""
    install(session, "-e", ".[test]", "nox")
    session.run("mypy", "--strict")


@nox.session
def serve(session: nox.Session) -> None:
    """Run the server and a machine process for this computer (embedded backend)."""
    install_opencode(session)
    install(session, "-e", ".")
    session.run("orchestrator", "up", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """The relay benchmark against real opencode (``nox -s bench -- --quick`` for a short run)."""
    install_opencode(session)
    install(session, "-e", ".")
    session.run("python", "benchmarks/relay.py", *session.posargs)
