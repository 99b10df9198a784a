"""``orchestrator.Client`` against a real server, machine process and opencode: commands, jobs."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

import orchestrator
from orchestrator.domain.api_tokens import WRONG_API_TOKEN
from orchestrator.domain.commands import CommandStatus
from tests.integration.chat_stage import worker_ready
from tests.integration.harness import NEEDS_OPENCODE
from tests.integration.test_opencode_questions import ASKED

pytestmark = [pytest.mark.slow, pytest.mark.anyio, NEEDS_OPENCODE]

REPLY = "Done: the job ran and its reply came back through the client."


async def test_a_script_runs_a_command_and_a_job_and_follows_the_jobs_reply(
    tmp_path: Path,
) -> None:
    """The machine lists a folder for the client; a job run now is answered by the model."""
    async with worker_ready(tmp_path, reply=REPLY, delta_delay=0.01) as ready:
        (ready.stage.root / "notes").mkdir()
        secret = await ready.api_token("script")
        async with orchestrator.Client(ready.stage.server.url, secret) as client:
            [summary] = await client.list_machines()
            machine_id = summary.machine.machine_id
            command = await client.create_command(
                machine_id, orchestrator.CommandKind.LIST_DIR, orchestrator.CommandArguments()
            )
            with anyio.fail_after(60):
                while not (command := await client.get_command(command.command_id)).finished:
                    await anyio.sleep(0.1)
            assert command.status is CommandStatus.DONE, command.error
            assert command.result is not None
            assert "notes" in [entry.name for entry in command.result.entries]

            on = orchestrator.WorkerId(ready.worker_id)
            draft = orchestrator.JobDraft(on, "digest", ready.model, "Sum up.", "0 3 * * *")
            job = await client.create_job(draft)
            run = await client.run_job_now(job.job_id)
            assert [r.run_id for r in await client.list_job_runs(job.job_id)] == [run.run_id]
            assert run.chat_session_id is not None
            assert run.message_id is not None
            with anyio.fail_after(120):
                texts = [t async for t in client.follow(run.chat_session_id, run.message_id)]
            assert "".join(texts) == REPLY
        async with orchestrator.Client(ready.stage.server.url, "oat_000777:sec_wrong") as wrong:
            with pytest.raises(orchestrator.AuthenticationFailed) as refused:
                await wrong.list_jobs()
            assert refused.value.message == WRONG_API_TOKEN
    assert ready.machine.returncode == 0, "".join(ready.lines)


async def test_a_script_dismisses_the_agents_question_and_lists_it_with_all(
    tmp_path: Path,
) -> None:
    """The question waits, the client dismisses it; only ``all=True`` lists it after that."""
    async with worker_ready(tmp_path, questions=ASKED) as ready:
        secret = await ready.api_token("script")
        async with orchestrator.Client(ready.stage.server.url, secret) as client:
            session = await client.start_session(ready.worker_id, ready.model)
            await client.send(session.chat_session_id, "Paint the button")
            with anyio.fail_after(60):
                while not (waiting := await client.list_questions(session.chat_session_id)):
                    await anyio.sleep(0.1)
            [asked] = waiting
            assert asked.questions[0].question == ASKED[0]["question"]
            dismissed = await client.dismiss_question(asked.question_id)
            assert (dismissed.dismissed, dismissed.answers) == (True, None)
            assert await client.list_questions(session.chat_session_id) == []
            every = await client.list_questions(session.chat_session_id, all=True)
            assert [q.question_id for q in every] == [asked.question_id]
            with pytest.raises(orchestrator.Conflict):
                await client.answer_question(asked.question_id, (("Blue",),))
            # The agent goes on without an answer: the reply ends (as a failure it would raise).
            with anyio.fail_after(60):
                [t async for t in client.follow(session.chat_session_id)]
    assert ready.machine.returncode == 0, "".join(ready.lines)
