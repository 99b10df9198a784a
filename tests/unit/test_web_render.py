"""Replies as sanitised Markdown, and the pages that host the web UI."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.domain.chat import MessageStatus
from orchestrator.domain.parts import TextAppend, ToolPart, ToolState, ToolStatus
from orchestrator.entrypoints.web.render import ALLOWED_TAGS, render_markdown
from tests.unit.test_web_support import Chat, Harness

pytestmark = pytest.mark.anyio


class _Markup(HTMLParser):
    """The elements and attributes a browser would build from some HTML."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes += [(name, value or "") for name, value in attrs]


def assert_inert(html: str) -> None:
    """Only allow-listed elements; no event handler; links only to http(s), mailto or relative."""
    markup = _Markup()
    markup.feed(html)
    assert markup.tags <= ALLOWED_TAGS, html
    for name, value in markup.attributes:
        assert not name.startswith("on"), html
        if name == "href":  # relative links are harmless; no javascript:, data: and the like
            assert urlsplit(value.strip()).scheme.lower() in ("", "http", "https", "mailto"), html


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        "[click](javascript:alert(1))",
        '<a href="javascript:alert(1)">x</a>',
        "<svg onload=alert(1)>",
        "```html\n<script>alert(1)</script>\n```",
        "`<img src=x onerror=alert(1)>`",
        "![x](javascript:alert(1))",
    ],
)
def test_markup_in_a_reply_comes_out_as_inert_text(text: str) -> None:
    """Raw HTML, event handlers and javascript: links never survive rendering."""
    assert_inert(render_markdown(text))


FRAGMENTS = st.sampled_from(
    [
        *("<script>", "</script>", "<img src=x onerror=alert(1)>", "<svg/onload=alert(1)>"),
        *("[a](", "javascript:alert(1)", ")", "<a href='", "'>", "</a>", "<!--", "-->"),
        *("```", "```js", "`", "*", "\n", "\n\n", "&lt;", "<", ">", '"', "'"),
    ]
)


@given(st.lists(FRAGMENTS | st.text(max_size=10), max_size=30).map("".join))
def test_any_text_renders_without_active_markup(text: str) -> None:
    """Whatever the agent writes, the HTML has no script, handler or javascript: link."""
    assert_inert(render_markdown(text))


def test_markdown_renders_with_highlighted_code() -> None:
    """Lists, emphasis, links and fenced code render; code is highlighted by language."""
    html = render_markdown(
        "1. **bold** [site](https://example.com)\n\n```python\ndef f():\n    return 1\n```"
    )
    assert "<ol>" in html
    assert "<strong>bold</strong>" in html
    assert '<a href="https://example.com" rel="noopener noreferrer nofollow">site</a>' in html
    assert '<code class="language-python"><span class="k">def</span>' in html


def test_unknown_languages_stay_plain_escaped_code() -> None:
    """A fence with an unknown language is plain, escaped code."""
    html = render_markdown("```nosuchlanguage\n<b>x</b>\n```")
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert "<b>" not in html


async def test_rendered_gives_finished_replies_only(chat: Chat) -> None:
    """Finished replies come as HTML; a reply still streaming and user messages do not."""
    backend = chat.web.backend
    session, reply = await chat.claimed("**question**")
    path = f"/api/sessions/{session.chat_session_id}/rendered"

    response = await chat.web.client.get(path)
    assert response.status == 200
    assert (await response.json()) == {"messages": []}

    await backend.complete_message(chat.token, reply.message_id, "# Done\n<script>x</script>")
    second = await backend.send_message(chat.user, session.chat_session_id, "again")
    other = await backend.claim_message(chat.token, second.message_id)
    await backend.end_reply(chat.token, other.message_id, MessageStatus.ABORTED, "Stopped.")

    everything = await (await chat.web.client.get(path)).json()
    assert [m["message_id"] for m in everything["messages"]] == [
        reply.message_id,
        other.message_id,
    ]
    assert (
        everything["messages"][0]["html"]
        == "<h1>Done</h1>\n<p>&lt;script&gt;x&lt;/script&gt;</p>\n"
    )

    one = await chat.web.client.get(path, params={"message_id": reply.message_id})
    assert [m["message_id"] for m in (await one.json())["messages"]] == [reply.message_id]


async def test_rendered_is_404_for_someone_elses_session(chat: Chat) -> None:
    """Another user's session answers 404, a visitor 401."""
    session = await chat.start()
    path = f"/api/sessions/{session.chat_session_id}/rendered"
    stranger = await chat.web.new_client()
    await chat.web.sign_in(stranger, "mallory")
    assert (await stranger.get(path)).status == 404
    visitor = await chat.web.new_client()
    assert (await visitor.get(path)).status == 401


async def test_machine_page_is_404_for_someone_elses_machine(chat: Chat) -> None:
    """The workers page shows the owner's machine and is a 404 page for anyone else."""
    machine_id = chat.worker.machine_id
    page = await chat.web.client.get(f"/machines/{machine_id}")
    assert page.status == 200
    assert 'data-machine-id="' + machine_id + '"' in await page.text()

    stranger = await chat.web.new_client()
    await chat.web.sign_in(stranger, "mallory")
    other = await stranger.get(f"/machines/{machine_id}")
    assert other.status == 404
    assert "laptop" not in await other.text()
    assert (await stranger.get("/machines/mch_nosuchmachine")).status == 404


async def test_pages_send_visitors_to_sign_in(web: Harness) -> None:
    """Every page of the app asks a visitor to sign in first."""
    for path in ("/", "/chat", "/machines/mch_1"):
        response = await web.client.get(path, allow_redirects=False)
        assert response.status == 303, path
        assert response.headers["Location"] == "/login"


async def test_chat_page_renders_for_the_signed_in_user(chat: Chat) -> None:
    """The chat page is a shell with the CSRF token, the user's name and its script."""
    page = await chat.web.client.get("/chat")
    html = await page.text()
    assert page.status == 200
    assert 'name="csrf-token"' in html
    assert "alice" in html
    assert '<script type="module" src="/static/js/chat.js">' in html


async def test_machine_names_in_the_first_paint_are_escaped(web: Harness) -> None:
    """The machine list embedded as JSON cannot close its script element."""
    await web.sign_in()
    found = await web.backend.find_user("alice")
    assert found is not None
    await web.backend.create_machine(found[0].user_id, "</script><script>alert(1)</script>")
    html = await (await web.client.get("/")).text()
    assert "</script><script>alert(1)" not in html
    assert "\\u003c/script\\u003e" in html


async def test_rendered_gives_each_text_part_with_its_position(chat: Chat) -> None:
    """A finished reply's text parts come rendered apart, with the positions of the tool calls."""
    backend = chat.web.backend
    session, reply = await chat.claimed("go")
    await backend.append_part_text(
        chat.token, reply.message_id, TextAppend("prt_a", 0, "**Before**")
    )
    running = ToolState(ToolStatus.COMPLETED, title="ls", output="x")
    await backend.save_part(chat.token, reply.message_id, "prt_t", ToolPart("bash", "c1", running))
    await backend.append_part_text(
        chat.token, reply.message_id, TextAppend("prt_b", 0, "<i>after</i>")
    )
    await backend.complete_message(chat.token, reply.message_id, "**Before**<i>after</i>")
    path = f"/api/sessions/{session.chat_session_id}/rendered"

    (message,) = (await (await chat.web.client.get(path)).json())["messages"]

    texts = message["texts"]
    assert [t["part_id"] for t in texts] == ["prt_a", "prt_b"]
    assert texts[0]["html"] == "<p><strong>Before</strong></p>\n"
    assert texts[1]["html"] == "<p>&lt;i&gt;after&lt;/i&gt;</p>\n"
    tool = await backend.list_parts(chat.user, session.chat_session_id, reply.message_id)
    between = next(p.position for p in tool if p.part_id == "prt_t")
    assert texts[0]["position"] < between < texts[1]["position"]


def test_a_fence_whose_language_is_only_unicode_white_space_renders_as_plain_code() -> None:
    """A fence info string of U+0085 (white space to Python) is plain code, not a crash."""
    html = render_markdown("```\x85\nprint(1)\n```")
    assert "print(1)" in html
