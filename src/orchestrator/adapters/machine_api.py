"""The machine API declared once: its calls and subscriptions, derived from ``MachineSide``.

Each coroutine method of :class:`~orchestrator.domain.ports.MachineSide` is
``POST /api/machine/<name>``: the arguments after the token travel as the keys
of a JSON object (a lease as ``instance`` and ``lease_ms``), the result as
``{"value": ...}``. Each ``watch_*`` method is a WebSocket subscription named
in :data:`SUBSCRIPTIONS`. The server's dispatcher and the remote client are
both built from :data:`MACHINE_METHODS`; neither lists a method itself.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Final, TypeVar, get_args, get_type_hints

import attrs

from orchestrator.adapters.parts_json import body_to_dict
from orchestrator.adapters.wire import converter, lease_fields
from orchestrator.domain.ids import MachineToken, WorkerToken
from orchestrator.domain.lease import Lease
from orchestrator.domain.parts import PartBody
from orchestrator.domain.ports import MachineSide

T = TypeVar("T")


@attrs.frozen
class Argument:
    """One argument of a machine API call: its JSON key, its type and its default."""

    name: str
    #: The annotation, resolved (``WorkerId``, ``str | None``, ``Sequence[str]``...).
    kind: object
    default: object
    keyword_only: bool

    @property
    def optional(self) -> bool:
        """A keyword-only argument with a default may be left out of the body."""
        return self.keyword_only and self.default is not inspect.Parameter.empty


@attrs.frozen
class MachineMethod:
    """One call of the machine API: the port method's name, arguments and result type."""

    name: str
    arguments: tuple[Argument, ...]
    #: The type of the call's value, or of each value of a subscription.
    result: object
    #: The port method's signature without ``self``: ``token`` first, then the arguments.
    signature: inspect.Signature

    def request(
        self, args: tuple[object, ...], kwargs: Mapping[str, object]
    ) -> tuple[MachineToken, dict[str, object]]:
        """The token and the JSON body of a call with the port method's ``args`` and ``kwargs``."""
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        token = bound.arguments["token"]
        if not isinstance(token, MachineToken):
            raise TypeError(f"{self.name} takes a MachineToken first, not {token!r}.")
        body: dict[str, object] = {}
        for argument in self.arguments:
            body.update(_encode(argument, bound.arguments[argument.name]))
        return token, body


def _encode(argument: Argument, value: object) -> dict[str, object]:
    if argument.kind == Lease | None:
        return lease_fields(value if isinstance(value, Lease) else None)
    if isinstance(value, WorkerToken):
        return {argument.name: str(value)}
    if isinstance(value, PartBody):
        return {argument.name: body_to_dict(value)}
    if is_record(argument.kind):  # a parameter object travels as its fields
        return dict(converter.unstructure(value))
    if isinstance(value, tuple):
        value = list(value)
    return {argument.name: converter.unstructure(value)}


def is_record(kind: object) -> bool:
    """Whether an argument is a parameter object, whose fields are keys of the body itself."""
    return isinstance(kind, type) and attrs.has(kind)


def record_fields(kind: type) -> tuple[Argument, ...]:
    """The fields of a parameter object as arguments; one with a default may be left out."""
    hints = get_type_hints(kind)
    return tuple(
        Argument(
            field.name,
            hints[field.name],
            inspect.Parameter.empty if field.default is attrs.NOTHING else field.default,
            keyword_only=True,
        )
        for field in attrs.fields(kind)
    )


def _method(name: str) -> MachineMethod:
    function = getattr(MachineSide, name)
    hints = get_type_hints(function)
    signature = inspect.signature(function)
    parameters = list(signature.parameters.values())[1:]  # without self
    arguments = tuple(
        Argument(p.name, hints[p.name], p.default, p.kind is inspect.Parameter.KEYWORD_ONLY)
        for p in parameters[1:]  # after the token
    )
    result = hints["return"]
    if not inspect.iscoroutinefunction(function):  # a subscription: AsyncIterator[value]
        (result,) = get_args(result)
    return MachineMethod(name, arguments, result, signature.replace(parameters=parameters))


def _port_methods() -> list[str]:
    """The public methods of ``MachineSide`` in the order its Protocols declare them."""
    found: list[str] = []
    for cls in MachineSide.__mro__:
        if cls.__module__ == MachineSide.__module__:
            found += [n for n, f in vars(cls).items() if inspect.isfunction(f) and n[0] != "_"]
    return found


#: Every call of the machine API by name, from the coroutine methods of ``MachineSide``.
MACHINE_METHODS: Final[dict[str, MachineMethod]] = {
    name: _method(name)
    for name in _port_methods()
    if inspect.iscoroutinefunction(getattr(MachineSide, name))
}
#: Subscriptions a machine may open over the WebSocket by name: ``watch_<name>`` of the port.
SUBSCRIPTIONS: Final[dict[str, MachineMethod]] = {
    name.removeprefix("watch_"): _method(name)
    for name in _port_methods()
    if name.startswith("watch_")
}


# --- list subscriptions: unchanged items are not sent again ------------------------------

#: The subscribe request's flag asking for :class:`ListFrame` values (older clients omit it).
REUSE_FLAG: Final = "reuse"


@attrs.frozen
class ListFrame:
    """A subscription's list value as sent after the first: items equal to ones sent before
    go as the index they had there (``same``), only the others whole (``items``, None where
    reused). A busy machine's work list changes one session at a time; the other 49 are
    neither encoded, sent, nor read again."""

    items: list[object]
    same: list[int]

    def as_json(self) -> dict[str, object]:
        return {"value": self.items, "same": self.same}


def reuse_items(
    previous: Sequence[object] | None, value: object, unstructure: Callable[[object], object]
) -> object | ListFrame:
    """``value`` unstructured whole, or as a :class:`ListFrame` reusing ``previous``'s items.

    Whole when there is nothing to reuse from (first value, not a list, items that cannot
    be compared by hash, or no item unchanged).
    """
    if previous is None or not isinstance(value, list) or not previous:
        return unstructure(value)
    try:
        index = {item: i for i, item in enumerate(previous)}
        same = [index.get(item, -1) for item in value]
    except TypeError:  # an item that is not hashable: compared by nothing, sent whole
        return unstructure(value)
    if all(i < 0 for i in same):
        return unstructure(value)
    return ListFrame(
        [unstructure(v) if i < 0 else None for v, i in zip(value, same, strict=True)], same
    )


def rebuild_items(
    previous: Sequence[T] | None, frame: ListFrame, structure: Callable[[object], T]
) -> list[T]:
    """The list a :class:`ListFrame` stands for: ``previous``'s items where reused, else read.

    Raises ``ValueError`` for a frame that does not fit ``previous`` (a reused index it
    does not have, or lengths that differ).
    """
    if len(frame.items) != len(frame.same):
        raise ValueError("A list frame's items and reused indexes differ in length.")
    known = previous or ()
    rebuilt: list[T] = []
    for item, index in zip(frame.items, frame.same, strict=True):
        if index < 0:
            rebuilt.append(structure(item))
        elif isinstance(index, int) and not isinstance(index, bool) and index < len(known):
            rebuilt.append(known[index])
        else:
            raise ValueError(f"A list frame reuses item {index!r}, which was never sent.")
    return rebuilt
