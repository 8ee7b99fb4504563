"""The HTML the server sends: a download's page, and the small page of a refusal.

Pure functions of what a valid link opens; every name is escaped, every address is relative
to the page (so a reverse proxy may put the server under any path), and nothing but the
download's own files is linked.
"""

from __future__ import annotations

import html
import posixpath
from urllib.parse import quote

from manager import SharedDownload, SharedFile, human_size
from web.headers import media_kind

__all__ = ["download_page", "file_href", "refusal_page"]

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;"
    "line-height:1.4}li{margin:.6rem 0}.size{color:#666;margin-left:.5rem}"
    "video,audio{display:block;max-width:100%;margin-top:.3rem}"
)


def _document(title: str, body: str) -> str:
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            "<meta name=\"referrer\" content=\"no-referrer\">"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
            f"<body>{body}</body></html>")


def file_href(token: str, shared: SharedFile) -> str:
    """A file's address relative to its page (``/d/<token>``): ``<token>/<n>/<name>``.

    The name at the end is only for whoever saves the file (wget, a download manager);
    the server goes by the number.
    """
    name = quote(posixpath.basename(shared.name), safe="")
    return f"{quote(token, safe='')}/{shared.number}/{name}"


def _file_item(token: str, shared: SharedFile) -> str:
    href = html.escape(file_href(token, shared), quote=True)
    item = (f"<li><a class=\"file\" href=\"{href}\" download>{html.escape(shared.name)}</a>"
            f"<span class=\"size\">{human_size(shared.length)}</span>")
    kind = media_kind(shared.name)
    if kind is not None:
        item += f"<{kind} controls preload=\"metadata\" src=\"{href}\"></{kind}>"
    return item + "</li>"


def download_page(token: str, shared: SharedDownload) -> str:
    """The page of a download: its files with sizes, a link each, a player for media."""
    total = sum(f.length for f in shared.files)
    count = f"{len(shared.files)} file" + ("s" if len(shared.files) != 1 else "")
    body = (f"<h1>{html.escape(shared.name)}</h1>"
            f"<p>{count}, {human_size(total)} · this link works until "
            f"{shared.expires_at:%Y-%m-%d %H:%M} UTC</p>"
            "<ul>" + "".join(_file_item(token, f) for f in shared.files) + "</ul>")
    return _document(shared.name, body)


def refusal_page(title: str, text: str) -> str:
    """A small plain page that says why nothing is served."""
    return _document(title, f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>")
