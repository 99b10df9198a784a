"""Fakes of the orchestrator's ports, for tests of code that embeds the library."""

from orchestrator.testing.fakes import FakeClock, InMemoryBackend, PlainHasher, SequentialIds
from orchestrator.testing.workspace import FakeWorkspace

__all__ = [
    "FakeClock",
    "FakeWorkspace",
    "InMemoryBackend",
    "PlainHasher",
    "SequentialIds",
]
