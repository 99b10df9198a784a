"""Assistant replies as sanitised HTML: Markdown with highlighted code blocks.

Rendering happens on the server so one place decides what markup a browser
may see: markdown-it-py turns the text into HTML with raw HTML disabled (a
``<script>`` in a reply comes out as text), Pygments highlights fenced code,
and nh3 keeps only an allow-list of tags, attributes and link schemes.
"""

from __future__ import annotations

from typing import Final

import anyio
import nh3
from aiohttp import web
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

from orchestrator.domain.chat import ChatMessage, MessageRole
from orchestrator.domain.errors import InvalidInput
from orchestrator.domain.paging import MAX_PAGE
from orchestrator.domain.parts import MessagePart, TextPart
from orchestrator.entrypoints.web.auth import require_user
from orchestrator.entrypoints.web.payload import SESSION, page_query
from orchestrator.entrypoints.web.state import BACKEND

ALLOWED_TAGS: Final = frozenset(
    {
        *("p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"),
        *("strong", "em", "del", "s", "code", "pre", "span", "a"),
        *("ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td"),
    }
)
ALLOWED_ATTRIBUTES: Final = {
    "a": {"href", "title"},
    "code": {"class"},
    "span": {"class"},
    "ol": {"start"},
}
URL_SCHEMES: Final = frozenset({"http", "https", "mailto"})
_FORMATTER: Final = HtmlFormatter(nowrap=True)
#: Pages of a session's history one request for rendered replies reads at most.
RENDER_PAGES: Final = 5


def _highlight(code: str, language: str, _attrs: object) -> str:
    """Pygments spans for a fenced block, or "" to let markdown-it escape it as plain text."""
    # The info string may be only Unicode white space (e.g. U+0085), which split() drops.
    words = language.split()
    if not words:
        return ""
    try:
        lexer = get_lexer_by_name(words[0])
    except ClassNotFound:
        return ""
    return str(highlight(code, lexer, _FORMATTER))


def markdown_renderer() -> MarkdownIt:
    """CommonMark plus tables and strikethrough; raw HTML in the text stays text."""
    md = MarkdownIt("commonmark", {"html": False, "highlight": _highlight})
    return md.enable(["table", "strikethrough"])


def sanitise(html: str) -> str:
    """Only allow-listed markup survives; links open without a referrer or opener."""
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def render_markdown(text: str, renderer: MarkdownIt | None = None) -> str:
    """``text`` as safe HTML: Markdown rendered, code highlighted, everything else sanitised."""
    return sanitise((renderer or markdown_renderer()).render(text))


async def rendered_messages(request: web.Request) -> web.Response:
    """``GET /api/sessions/{session_id}/rendered[?message_id=…][&cursor=…]``: replies as HTML.

    Answers ``{"messages": [{"message_id", "html", "texts"}]}`` for the finished
    assistant messages of one page of the session (the newest, or the one
    ``cursor`` names), only those named by ``message_id`` when given: then up
    to ``RENDER_PAGES`` pages are read to find them. ``texts`` is each text part as
    ``{"part_id", "position", "html"}``, so the page can place the reply's text
    between its tool calls in the order they were made.
    """
    user = require_user(request)
    session_id = SESSION.of(request)
    wanted = set(request.query.getall("message_id", []))
    if len(wanted) > MAX_PAGE:
        raise InvalidInput(f"Ask for at most {MAX_PAGE} replies at once.")
    cursor, _ = page_query(request)
    backend = request.app[BACKEND]
    found: list[ChatMessage] = []
    pages = 1
    while True:
        page = await backend.list_messages_page(user, session_id, cursor, MAX_PAGE)
        found += page.items
        missing = wanted - {m.message_id for m in found}
        if not wanted or not missing or page.cursor is None or pages == RENDER_PAGES:
            break
        pages += 1
        cursor = page.cursor
    replies = [
        m
        for m in reversed(found)
        if m.role is MessageRole.ASSISTANT
        and m.completed
        and (not wanted or m.message_id in wanted)
    ]

    texts: dict[str, list[MessagePart]] = {m.message_id: [] for m in replies}
    for reply in replies:
        for part in await backend.list_parts(user, session_id, reply.message_id):
            if isinstance(part.body, TextPart):
                texts[reply.message_id].append(part)

    def render_all() -> list[dict[str, object]]:
        renderer = markdown_renderer()
        return [
            {
                "message_id": m.message_id,
                "html": render_markdown(m.content, renderer),
                "texts": [
                    {
                        "part_id": p.part_id,
                        "position": p.position,
                        "html": render_markdown(p.body.text, renderer),
                    }
                    for p in texts[m.message_id]
                    if isinstance(p.body, TextPart)
                ],
            }
            for m in replies
        ]

    # Long replies take a while to render; keep the event loop free for the streams.
    return web.json_response({"messages": await anyio.to_thread.run_sync(render_all)})


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the rendering endpoint."""
    router.add_get("/api/sessions/{session_id}/rendered", rendered_messages)
