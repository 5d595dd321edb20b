"""The pages one signs into with an API key, the finance console and merchant insights: each
one document, put together once when the hub starts from what they share,
hub/web/key_page.html (the head, the top bar with who is signed in, the sign-in card), and
its own parts in hub/web/<page>/index.html. Their scripts and stylesheets are served as files
(the /console and /insights mounts of hub/app.py). The mall stays one whole file, since
storefronts copy it (docs/storefront.md)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from string import Template

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

WEB = Path(__file__).parent
KEY_PAGES = ("console", "insights")
_PART = re.compile(r"^<!-- \$(\w+) -->\n", re.MULTILINE)


def parts(source: str) -> dict[str, str]:
    """A page file's parts: what follows each line `<!-- $name -->` up to the next, without
    the line breaks around it; what comes before the first is the file's note."""
    pieces = _PART.split(source)[1:]
    return {name: text.strip("\n") for name, text in zip(pieces[::2], pieces[1::2], strict=True)}


def assembled(page: str) -> str:
    """The document of hub/web/<page>/: its parts in the shell, whose note is left out."""
    source = (WEB / "key_page.html").read_text("utf-8")
    shell = Template(source[source.index("<!doctype html>") :])
    filled = parts((WEB / page / "index.html").read_text("utf-8")) | {"page": page}
    if unmatched := set(shell.get_identifiers()) ^ filled.keys():
        raise ValueError(f"{page}/index.html and key_page.html differ in parts: {unmatched}")
    return shell.substitute(filled)


def _serving(html: str) -> Callable[[Request], Awaitable[Response]]:
    """The page, with an ETag so that a browser's revisit is answered 304, as the files
    of the mounts are."""
    etag = f'"{hashlib.md5(html.encode(), usedforsecurity=False).hexdigest()}"'

    async def page(request: Request) -> Response:
        asked = request.headers.get("if-none-match", "")
        if etag in (tag.strip(" W/") for tag in asked.split(",")):
            return Response(status_code=304, headers={"etag": etag})
        return HTMLResponse(html, headers={"etag": etag})

    return page


# Before the mounts of hub/app.py, so that they answer /<page>/ and /<page>/index.html.
ROUTES = [
    Route(f"/{page}/{name}", _serving(html))
    for page, html in ((page, assembled(page)) for page in KEY_PAGES)
    for name in ("", "index.html")
]
