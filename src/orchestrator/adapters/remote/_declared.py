"""A client method generated from a declared API method (a machine API call, a browser route)."""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Coroutine
from typing import Any, ClassVar, Concatenate, Generic, ParamSpec, Self, TypeVar, overload

S = TypeVar("S")
C = TypeVar("C")
P = ParamSpec("P")
R = TypeVar("R")


class Declared(abc.ABC, Generic[S, C, P, R]):
    """A method of the declaring Protocol ``S`` as a method of the client ``C``.

    ``client.<name>(...)`` takes the declared method's arguments and returns its
    result; a subclass says how one call travels (:meth:`_bind`).
    """

    #: The names the declaration's table holds (a method it lacks fails at import).
    declared: ClassVar[Collection[str]]

    def __init__(self, method: Callable[Concatenate[S, P], Coroutine[Any, Any, R]]) -> None:
        if method.__name__ not in self.declared:
            raise ValueError(f"{method.__qualname__} is not in its API's table.")
        self.name = method.__name__
        self.__doc__ = method.__doc__

    @overload
    def __get__(self, client: None, owner: type) -> Self: ...

    @overload
    def __get__(self, client: C, owner: type) -> Callable[P, Coroutine[Any, Any, R]]: ...

    def __get__(self, client: C | None, owner: type) -> Self | Callable[P, Coroutine[Any, Any, R]]:
        if client is None:
            return self
        return self._bind(client)

    @abc.abstractmethod
    def _bind(self, client: C) -> Callable[P, Coroutine[Any, Any, R]]:
        """The call, made by ``client``."""
