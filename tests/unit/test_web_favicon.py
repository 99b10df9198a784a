"""The icon: ``/favicon.ico`` answers with the SVG, and every page links it."""

from __future__ import annotations

import pytest

from tests.unit.test_web_support import Harness

pytestmark = pytest.mark.anyio


async def test_favicon_ico_is_the_svg_icon_without_signing_in(web: Harness) -> None:
    """Browsers ask for /favicon.ico before anything else: 200, an SVG, no session needed."""
    response = await web.client.get("/favicon.ico")
    assert response.status == 200
    assert response.headers["Content-Type"] == "image/svg+xml"
    body = await response.text()
    assert body.startswith("<svg")
    assert body.rstrip().endswith("</svg>")
    static = await web.client.get("/static/favicon.svg")
    assert await static.text() == body


async def test_pages_link_the_svg_icon(web: Harness) -> None:
    """The sign-in page (like every page, through base.html) names the SVG as its icon."""
    page = await (await web.client.get("/login")).text()
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page
