"""Fakes of the orchestrator's ports, for tests of code that embeds the library."""

from orchestrator.testing.fakes import FakeClock, InMemoryBackend, PlainHasher, SequentialIds

__all__ = [
    "FakeClock",
    "InMemoryBackend",
    "PlainHasher",
    "SequentialIds",
]
