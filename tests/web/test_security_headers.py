"""The web pages cannot be framed and run only the hub's own scripts; the federation SDL
is ADMIN's alone in production."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from hub.config import Settings
from tests.helpers import Api, create_key, register, running_app

WEB = Path(__file__).resolve().parents[2] / "hub" / "web"
PAGES = [
    "/mall/",
    "/console/",
    "/insights/",
    "/mall/index.html",
    "/console/index.html",
    "/insights/index.html",
]


def _directives(policy: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            found[words[0]] = words[1:]
    return found


@pytest.mark.parametrize("path", PAGES)
async def test_pages_send_a_strict_csp_and_refuse_framing(api: Api, path: str) -> None:
    response = await api.client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    policy = _directives(response.headers["content-security-policy"])
    assert policy["default-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    for directive in ("script-src", "style-src"):
        sources = policy.get(directive, policy["default-src"])
        assert "'unsafe-inline'" not in sources and "'unsafe-eval'" not in sources
        assert all(s == "'self'" for s in sources), sources
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]


async def test_scripts_and_styles_of_the_pages_are_framed_too(api: Api) -> None:
    for path in (
        "/mall/app.js",
        "/console/console.js",
        "/insights/insights.js",
        "/mall/style.css",
        "/assets/dom.js",
    ):
        response = await api.client.get(path)
        assert response.status_code == 200
        assert response.headers["x-content-type-options"] == "nosniff"


class _Inline(HTMLParser):
    """Collects what a strict CSP would block in a page: inline scripts, handlers, styles,
    and anything loaded from another origin."""

    def __init__(self) -> None:
        super().__init__()
        self.blocked: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "script":
            self._in_script = "src" not in named
            if self._in_script:
                self.blocked.append("inline <script>")
        if tag == "style":
            self.blocked.append("inline <style>")
        for name, value in attrs:
            if name.startswith("on"):
                self.blocked.append(f"handler {name}")
            if name == "style":
                self.blocked.append("style attribute")
            if name in ("src", "href") and value and re.match(r"^(https?:)?//", value):
                self.blocked.append(f"external {value}")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False


# Every page's file, and the shell the console and insights pages are put together in.
PAGES = [*sorted(WEB.glob("*/index.html")), WEB / "key_page.html"]


@pytest.mark.parametrize(
    "page", PAGES, ids=lambda p: p.parent.name if p.stem == "index" else p.stem
)
def test_the_pages_need_nothing_the_policy_blocks(page: Path) -> None:
    parser = _Inline()
    parser.feed(page.read_text())
    assert parser.blocked == []
    for script in page.parent.glob("*.js"):
        _assert_the_policy_allows(script)


def test_the_modules_the_pages_share_need_nothing_the_policy_blocks() -> None:
    shared = sorted((WEB / "common").glob("*.js"))
    assert shared
    for script in shared:
        _assert_the_policy_allows(script)


def _assert_the_policy_allows(script: Path) -> None:
    source = script.read_text()
    assert not re.search(r"\beval\(|new Function\(|\.innerHTML\s*=", source), script
    assert not re.search(r"setAttribute\(\s*['\"]style|\.style\.cssText", source), script
    assert not re.search(r"fetch\(\s*['\"]https?://", source), script


@pytest.fixture
def production(settings: Settings) -> Settings:
    return settings.model_copy(update={"env": "production", "rate_limit_per_minute": 0})


async def test_the_sdl_is_admin_only_in_production(production: Settings) -> None:
    async with running_app(production) as api:
        await register(api, "jade", "JADE")
        sdl = await api.gql("{ _service { sdl } }")
        assert "@key" in sdl["_service"]["sdl"]
        for role, merchant in (("MERCHANT", "jade"), ("FINANCE", None), ("STOREFRONT", None)):
            key = await create_key(api, role, merchant)
            errors = await api.errors("{ _service { sdl } }", key=key)
            assert errors[0]["extensions"]["code"] == "FORBIDDEN"


async def test_any_key_reads_the_sdl_in_development(api: Api) -> None:
    await register(api, "jade", "JADE")
    key = await create_key(api, "MERCHANT", "jade")
    sdl = await api.gql("{ _service { sdl } }", key=key)
    assert "type Merchant" in sdl["_service"]["sdl"]
