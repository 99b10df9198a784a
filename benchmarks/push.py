"""Web Push cost and latency against the loopback stand-in push service (about 20 s).

1. ``send``: one notification encrypted (aes128gcm), VAPID-signed and posted by
   ``WebPushSender`` until the stand-in (which decrypts and verifies it) answers 201.
2. ``asked → delivered``: a permission request recorded on the embedded SQLite
   backend until the stand-in has accepted its notification, through the server's
   ``Notifier`` (its backend watch, settings and subscription look-ups, delivery).

    python benchmarks/push.py [--sends 200] [--asks 30]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import anyio

from orchestrator.adapters.push import WebPushSender, load_vapid_keys
from orchestrator.application.notifications import Notifier
from orchestrator.domain.notifications import parse_subscription
from orchestrator.domain.replies import PermissionAsk
from orchestrator.testing import SequentialIds
from orchestrator.testing.fakes import FakeClock
from orchestrator.testing.push_service import StandInPushService
from orchestrator.testing.sqlite import open_test_backend


def _summary(name: str, samples: list[float]) -> None:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    print(f"{name:<22} n={len(ms):<4} p50={statistics.median(ms):7.2f} ms  p95={p95:7.2f} ms")


async def main(sends: int, asks: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        service = await StandInPushService().start()
        keys = load_vapid_keys(data)
        sender = WebPushSender(keys, "mailto:bench@example.com")
        backend = await open_test_backend(
            data / "db.sqlite3", clock=FakeClock(), ids=SequentialIds()
        )
        try:
            user = (await backend.create_user("alice", "h")).user_id
            draft = parse_subscription(
                service.subscribe(keys.application_server_key), allow_loopback_http=True
            )
            subscription = await backend.save_push_subscription(user, draft)

            times = []
            for _ in range(sends):
                started = time.perf_counter()
                reply = await sender.send(subscription, b'{"title":"t","body":"b"}')
                times.append(time.perf_counter() - started)
                assert reply.status == 201, reply
            _summary("send (encrypt+post)", times)

            machine, token = await backend.create_machine(user, "laptop")
            await backend.go_online(token, "/srv")
            worker = await backend.add_worker(user, machine.machine_id, "repo", None)
            await backend.update_worker_models(token, worker.worker_id, ["fake/m"])
            session = await backend.start_session(user, worker.worker_id, "fake/m")
            latencies = []
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(Notifier(backend, sender.send, FakeClock()).run)
                await anyio.sleep(0.2)
                for n in range(asks):
                    question = await backend.send_message(user, session.chat_session_id, "go")
                    reply_msg = await backend.claim_message(token, question.message_id)
                    before = len(service.received)
                    started = time.perf_counter()
                    await backend.record_permission(
                        token, reply_msg.message_id, PermissionAsk(f"p{n}", "bash", "ls")
                    )
                    # The stand-in only appends to a list; a short poll is precise enough here.
                    while len(service.received) == before:  # noqa: ASYNC110
                        await anyio.sleep(0.0005)
                    latencies.append(time.perf_counter() - started)
                    await backend.complete_message(token, reply_msg.message_id, "ok")
                tasks.cancel_scope.cancel()
            _summary("asked → delivered", latencies)
        finally:
            await backend.close()
            await sender.close()
            await service.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=200)
    parser.add_argument("--asks", type=int, default=30)
    arguments = parser.parse_args()
    anyio.run(main, arguments.sends, arguments.asks)
