"""The machine API declared once: the table, the client built from it and the server's readers."""

from __future__ import annotations

import inspect
from datetime import timedelta

import attrs
import pytest

from orchestrator.adapters.machine_api import MACHINE_METHODS, SUBSCRIPTIONS
from orchestrator.adapters.remote import RemoteMachineBackend
from orchestrator.domain.chat import ChatSessionStatus, SessionUpdate
from orchestrator.domain.errors import OrchestratorError
from orchestrator.domain.ids import MachineId, MachineToken, WorkerId, WorkerToken
from orchestrator.domain.lease import Lease
from orchestrator.domain.parts import TextPart
from orchestrator.domain.ports import MachineSide
from orchestrator.domain.replies import PermissionAsk
from orchestrator.entrypoints.web.machine_api import read_arguments
from orchestrator.entrypoints.web.payload import Body

TOKEN = MachineToken(MachineId("mch_1"), "sec_1")


def _port_methods() -> set[str]:
    return {name for name, _ in inspect.getmembers(MachineSide) if not name.startswith("_")}


def test_every_port_method_is_a_call_or_a_subscription() -> None:
    """Each method of MachineSide is exactly one call or one subscription of the machine API."""
    subscribed = {method.name for method in SUBSCRIPTIONS.values()}
    assert set(MACHINE_METHODS) | subscribed == _port_methods()
    assert not set(MACHINE_METHODS) & subscribed


def test_subscriptions_keep_their_wire_names_in_the_ports_order() -> None:
    """``watch_<name>`` is the subscription ``<name>``, listed as the port declares them."""
    assert list(SUBSCRIPTIONS) == ["own_workers", "work", "commands"]
    assert [m.name for m in SUBSCRIPTIONS.values()] == [f"watch_{n}" for n in SUBSCRIPTIONS]


def test_the_client_offers_every_port_method_with_its_documentation() -> None:
    """RemoteMachineBackend has each port method, documented as the port documents it."""
    client = RemoteMachineBackend("http://127.0.0.1:1")
    for name in _port_methods():
        assert callable(getattr(client, name))
        assert getattr(RemoteMachineBackend, name).__doc__ == getattr(MachineSide, name).__doc__


def test_a_call_travels_as_its_arguments_by_name() -> None:
    """The body of a call holds each argument after the token under its name, in JSON values."""
    worker_token = WorkerToken(MachineId("mch_1"), WorkerId("wrk_2"))
    token, body = MACHINE_METHODS["register_worker"].request(
        (TOKEN, worker_token, "a/b"), {"name": None}
    )
    assert (token, body) == (
        TOKEN,
        {"worker_token": str(worker_token), "directory": "a/b", "name": None},
    )
    update = SessionUpdate(status=ChatSessionStatus.IDLE)
    _, body = MACHINE_METHODS["update_session"].request((TOKEN, "ses_1", update), {})
    assert body == {
        "session_id": "ses_1",
        "status": "idle",
        "agent_session_id": None,
        "title": None,
    }


def test_a_parameter_object_travels_as_its_fields_and_is_read_back_whole() -> None:
    """A record argument (SessionUpdate, PermissionAsk) is flat in the body, rebuilt on reading."""
    method = MACHINE_METHODS["update_session"]
    update = SessionUpdate(status=ChatSessionStatus.IDLE, title="T")
    _, body = method.request((TOKEN, "chs_1", update), {})
    assert read_arguments(method, Body(body)) == (["chs_1", update], {})
    ask = PermissionAsk("per_1", "edit", "a.py", file="a.py", diff="+x", diff_size=2)
    _, body = MACHINE_METHODS["record_permission"].request((TOKEN, "msg_1", ask), {})
    assert body == {"message_id": "msg_1", **attrs.asdict(ask)}
    del body["file"], body["diff"], body["diff_size"]  # optional fields take their defaults
    read = read_arguments(MACHINE_METHODS["record_permission"], Body(body))
    assert read == (["msg_1", PermissionAsk("per_1", "edit", "a.py")], {})
    _, body = MACHINE_METHODS["update_worker_models"].request((TOKEN, "wrk_2", ("a", "b")), {})
    assert body == {"worker_id": "wrk_2", "models": ["a", "b"]}
    _, body = MACHINE_METHODS["save_part"].request((TOKEN, "msg_1", "prt_1", TextPart("hi")), {})
    assert body["body"] == {"type": "text", "text": "hi"}


def test_a_lease_travels_as_instance_and_milliseconds() -> None:
    """A lease is sent as ``instance`` and ``lease_ms``, and nothing at all without one."""
    lease = Lease("inst", timedelta(seconds=2))
    assert MACHINE_METHODS["heartbeat"].request((TOKEN, lease), {})[1] == {
        "instance": "inst",
        "lease_ms": 2000,
    }
    assert MACHINE_METHODS["heartbeat"].request((TOKEN,), {})[1] == {}


def test_a_call_needs_a_machine_token_first() -> None:
    """Calling with something other than a MachineToken first is a programming error."""
    with pytest.raises(TypeError, match="MachineToken"):
        MACHINE_METHODS["authenticate"].request(("mch_1:sec_1",), {})


def _needs_arguments(name: str) -> bool:
    method = MACHINE_METHODS[name]
    return any(not a.optional and a.kind != Lease | None for a in method.arguments)


@pytest.mark.parametrize("name", [n for n in sorted(MACHINE_METHODS) if _needs_arguments(n)])
def test_the_server_refuses_a_call_without_its_arguments_in_a_sentence(name: str) -> None:
    """An empty body gets a domain error, not a crash: every argument's type has a reader."""
    with pytest.raises(OrchestratorError, match=r"\.$"):
        read_arguments(MACHINE_METHODS[name], Body({}))


@pytest.mark.parametrize("name", [n for n in sorted(MACHINE_METHODS) if not _needs_arguments(n)])
def test_the_server_reads_a_call_without_arguments_from_an_empty_body(name: str) -> None:
    """A call whose arguments may all be left out reads an empty body as their defaults."""
    positional, keywords = read_arguments(MACHINE_METHODS[name], Body({}))
    assert all(value is None for value in [*positional, *keywords.values()])


def test_an_argument_type_without_a_reader_is_a_programming_error() -> None:
    """A port method whose argument type the server cannot read fails loudly, not silently."""
    heartbeat = MACHINE_METHODS["worker_heartbeat"]
    odd = attrs.evolve(heartbeat, arguments=(attrs.evolve(heartbeat.arguments[0], kind=float),))
    with pytest.raises(TypeError, match="cannot read an argument of type"):
        read_arguments(odd, Body({"worker_id": 1.5}))
