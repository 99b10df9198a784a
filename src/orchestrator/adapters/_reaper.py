"""Run a command so that it and everything it starts die with the machine process (Linux).

Usage: ``python -I -S _reaper.py PARENT_PID COMMAND [ARGUMENT...]``

The reaper is a child subreaper (``PR_SET_CHILD_SUBREAPER``): whatever the command
starts, in any process group or session, stays its descendant even when a parent in
between exits. It asks the kernel for SIGUSR1 when the machine process dies
(``PR_SET_PDEATHSIG``, which fires on SIGKILL too) and then SIGKILLs every
descendant at once. When the command itself exits, anything it left running is
killed too, and the reaper exits with the command's status. SIGTERM and SIGINT
are passed on to the command, which ends the normal way.

It is a script run by path with ``-I -S`` (no site, no environment), not a module of
the package: it starts in ~20 ms and imports only the standard library.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
PARENT_DIED = signal.SIGUSR1
#: Seconds between rounds of killing while children are still exiting.
ROUND = 0.005


def below(root: int) -> list[tuple[int, bool]]:
    """Every process below ``root`` with whether it shows as a zombie, from /proc's parent links.

    A multithreaded process whose main thread has exited shows as a zombie while its
    other threads, and the children they started, live on: the walk goes through it.
    """
    children: dict[int, list[tuple[int, bool]]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                raw = stat.read()
        except OSError:
            continue
        fields = raw[raw.rfind(b")") + 2 :].split()
        if len(fields) < 2:
            continue  # read while the process was being torn down
        state, parent = fields[:2]
        children.setdefault(int(parent), []).append((int(entry), state == b"Z"))
    found: list[tuple[int, bool]] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child[0])
    return found


def descendants(root: int) -> list[int]:
    """Live (non-zombie) processes below ``root``."""
    return [pid for pid, zombie in below(root) if not zombie]


def reap() -> bool:
    """Collect every exited child without waiting; False once no child is left."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True


def kill_everything() -> None:
    """SIGKILL every descendant until no child is left to collect.

    Every round kills what it finds again: one that forked meanwhile, or one a scan
    missed, is caught by the next; as a subreaper, this process inherits every orphan
    below it, so once it has no child left, nothing it started runs.
    """
    me = os.getpid()
    while True:
        for pid, _ in below(me):  # a zombie too: it may be a main thread whose others live
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if not reap():
            return
        time.sleep(ROUND)


def main(parent: int, command: list[str]) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1)
    child = 0  # 0 until the command runs (and in the forked process itself)

    def parent_died(signum: int, frame: object) -> None:
        # The kernel signals again each time this process passes from one exiting
        # thread of the machine process to the next: one clean-up is enough.
        signal.signal(PARENT_DIED, signal.SIG_IGN)
        try:
            kill_everything()
        finally:  # whatever happened, never outlive the machine process
            os._exit(128 + signal.SIGKILL)

    def pass_on(signum: int, frame: object) -> None:
        if child:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)
        else:
            os._exit(128 + signum)

    # Installed before the fork, so no signal can fall between the cracks.
    signal.signal(PARENT_DIED, parent_died)
    signal.signal(signal.SIGTERM, pass_on)
    signal.signal(signal.SIGINT, pass_on)
    libc.prctl(PR_SET_PDEATHSIG, PARENT_DIED)
    if os.getppid() != parent:
        return 1  # the machine process died before we could watch it
    child = os.fork()
    if child == 0:
        # The command dies with the reaper too, should the reaper itself be killed.
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        try:
            os.execvp(command[0], command)  # noqa: S606 -- an argument list, no shell
        finally:
            os._exit(127)
    while True:  # also collects orphans handed to us meanwhile
        pid, status = os.waitpid(-1, 0)
        if pid == child:
            break
    kill_everything()  # the command is gone; nothing it started may outlive it
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), sys.argv[2:]))
