"""The Mini App's routes: its page, and the JSON API the page drives.

Every API request proves who sends it with Telegram's signed initData
(:mod:`web.miniapp.identity`), then passes the chat's rules (:class:`ChatRights`, given by
the bot) and the user's bounds (:mod:`web.miniapp.limits`); only then is the manager asked,
and only about that chat's downloads (the manager refuses another chat's id as not found).
What a user may change follows the bot's group rule: the download's adder and the chat's
admins. Answers are JSON with an ``error`` sentence when refused; never a path, a secret,
or a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol

from aiohttp import web

from manager import (
    Cancellation,
    DownloadLink,
    DownloadNotFound,
    Event,
    FileEntry,
    InvalidSource,
    InvalidState,
    LinksOff,
    ManagerError,
    MirrorOff,
    OnAnotherNode,
    Torrent,
    TorrentState,
    user_text,
)
from web.miniapp.identity import InitDataCheck, NotSigned, Signed
from web.miniapp.limits import UserLimits
from web.miniapp.rights import ChatRights, ChatSender
from web.miniapp.stream import ChatStream, Frames
from web.miniapp.views import download_json, files_json

__all__ = ["PAGE_HEADERS", "ChatDownloads", "MiniApp"]

log = logging.getLogger(__name__)

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; script-src 'self' https://telegram.org; "
                               "style-src 'self'; connect-src 'self'; img-src 'self' data:; "
                               "base-uri 'none'; form-action 'none'; "
                               "frame-ancestors https://*.telegram.org",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
"""Telegram's web clients show a Mini App in a frame; nothing else may frame it."""
_STATIC = {"": ("index.html", "text/html"), "app.js": ("app.js", "text/javascript"),
           "app.css": ("app.css", "text/css")}
_CHOOSABLE = frozenset({TorrentState.QUEUED, TorrentState.DOWNLOADING, TorrentState.PAUSED})
"""States whose files may still be chosen (the manager refuses a finished download's)."""
_MAX_BODY = 64 * 1024  # a selection of 10,000 files is ~60 KB of JSON


class ChatDownloads(Protocol):
    """What the Mini App asks of the manager (:class:`manager.TorrentManager`)."""

    async def list(self, chat_id: int | None = None, *,
                   limit: int | None = None) -> list[Torrent]: ...
    async def get(self, download_id: int, chat_id: int | None = None) -> Torrent: ...
    async def files(self, download_id: int,
                    chat_id: int | None = None) -> tuple[FileEntry, ...]: ...
    async def own_files(self, download_id: int,
                        chat_id: int | None = None) -> tuple[FileEntry, ...]: ...
    async def pause(self, download_id: int, chat_id: int | None = None,
                    user_id: int = 0) -> Torrent: ...
    async def resume(self, download_id: int, chat_id: int | None = None,
                     user_id: int = 0) -> Torrent: ...
    async def cancel(self, download_id: int, chat_id: int | None = None, user_id: int = 0,
                     *, delete_files: bool = False) -> Cancellation: ...
    async def set_files(self, download_id: int, indexes: Iterable[int],
                        chat_id: int | None = None, user_id: int = 0) -> Torrent: ...
    async def link(self, download_id: int, chat_id: int | None = None,
                   user_id: int = 0) -> DownloadLink: ...
    async def mirror(self, download_id: int, chat_id: int | None = None,
                     user_id: int = 0) -> Torrent: ...
    @property
    def mirror_enabled(self) -> bool: ...
    def subscribe(self, subscriber: Callable[[Event], None]) -> Callable[[], None]: ...


class _Refused(Exception):
    """An API request answered with an error: its status and the sentence for the user."""

    def __init__(self, status: int, text: str, *, retry_after: float | None = None) -> None:
        super().__init__(text)
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class _Asker:
    """A request that passed the checks: who asks, about which chat."""

    signed: Signed
    title: str


def _json(data: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_compact, headers={
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


def _compact(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


def _manager_refusal(error: ManagerError) -> _Refused:
    if isinstance(error, DownloadNotFound):
        return _Refused(404, user_text(error))
    if isinstance(error, InvalidState | MirrorOff | LinksOff | OnAnotherNode):
        return _Refused(409, user_text(error))
    if isinstance(error, InvalidSource):
        return _Refused(400, user_text(error))
    return _Refused(503, user_text(error))


class MiniApp:
    """The Mini App's page and API, added to the link server's application.

    Parameters:
        manager: the downloads (a chat's only, always).
        check: the initData check (holds the bot's token).
        rights: the chat's rules, from the bot.
        static: the page's three files (``index.html``, ``app.js``, ``app.css``) by name.
        sender: sends a finished download into its chat, from the bot (None: no "Send").
        limits: the per-user bounds.
    """

    def __init__(self, manager: ChatDownloads, check: InitDataCheck, rights: ChatRights,
                 static: dict[str, bytes], *, sender: ChatSender | None = None,
                 limits: UserLimits | None = None) -> None:
        self._manager = manager
        self._check = check
        self._rights = rights
        self._static = static
        self._sender = sender
        self._limits = limits or UserLimits()
        self._frames = Frames()

    @classmethod
    async def create(cls, manager: ChatDownloads, check: InitDataCheck, rights: ChatRights, *,
                     sender: ChatSender | None = None,
                     limits: UserLimits | None = None) -> MiniApp:
        """The Mini App with its page read from the package (in a thread: a file read)."""
        static = await asyncio.to_thread(_read_static)
        return cls(manager, check, rights, static, sender=sender, limits=limits)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """``/app/`` (the page and its two files) and ``/app/api/…``."""
        router.add_get("/app", self._to_page)
        for name in _STATIC:
            router.add_get(f"/app/{name}", self._page_file)
        router.add_post("/app/api/login", self._login)
        router.add_get("/app/api/me", self._api(self._me))
        router.add_get("/app/api/downloads", self._api(self._downloads))
        router.add_get(r"/app/api/downloads/{id:[0-9]{1,9}}/files", self._api(self._files))
        for action in ("files", "pause", "resume", "cancel", "link", "send", "mirror"):
            router.add_post(rf"/app/api/downloads/{{id:[0-9]{{1,9}}}}/{action}",
                            self._api(getattr(self, f"_{action}_action")))
        events = self._api(self._events)
        events.unbounded = True  # type: ignore[attr-defined]  # see web.server._bounded
        router.add_get("/app/api/events", events)

    # --- the page ---------------------------------------------------------------------------

    async def _to_page(self, request: web.Request) -> web.StreamResponse:
        # Relative, so that a proxy's path prefix stays (/prefix/app -> /prefix/app/).
        raise web.HTTPMovedPermanently("app/" + (f"?{request.query_string}"
                                                 if request.query_string else ""))

    async def _page_file(self, request: web.Request) -> web.StreamResponse:
        name = request.path.rsplit("/", 1)[1]
        file_name, content_type = _STATIC[name]
        return web.Response(body=self._static[file_name], content_type=content_type,
                            charset="utf-8", headers=PAGE_HEADERS)

    async def _login(self, request: web.Request) -> web.StreamResponse:
        """A ``/web`` login link's one use: its session (:meth:`InitDataCheck.redeem`)."""
        try:
            login = (await _body(request)).get("login")
            if not isinstance(login, str):
                raise _Refused(400, "This is not a login link.")
            try:
                session = self._check.redeem(login)
            except NotSigned as error:
                raise _Refused(401, str(error)) from None
        except _Refused as refused:
            return _json({"error": str(refused)}, refused.status)
        return _json({"session": session})

    # --- the checks every API request passes -------------------------------------------------

    def _api(self, handler: Callable[[web.Request, _Asker], Awaitable[web.StreamResponse]],
             ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def checked(request: web.Request) -> web.StreamResponse:
            try:
                asker = await self._asker(request)
                return await handler(request, asker)
            except _Refused as refused:
                response = _json({"error": str(refused)}, refused.status)
                if refused.retry_after is not None:
                    response.headers["Retry-After"] = str(max(1, round(refused.retry_after)))
                return response
            except ManagerError as error:
                refused = _manager_refusal(error)
                return _json({"error": str(refused)}, refused.status)

        return checked

    async def _asker(self, request: web.Request, *, count: bool = True) -> _Asker:
        """Who asks about which chat, once every check passed (``count``: the request is
        spent from the user's rate; an open stream's checks again are not)."""
        try:
            signed = self._check.check(request.headers.get("Authorization"))
        except NotSigned as error:
            raise _Refused(401, str(error)) from None
        if count and (wait := self._limits.take(signed.user_id)):
            raise _Refused(429, "Too many requests; wait a moment.", retry_after=wait)
        try:
            title = await self._rights.open_chat(signed.user_id, signed.chat_id)
        except PermissionError as error:
            raise _Refused(403, str(error)) from None
        return _Asker(signed, title)

    async def _may_act(self, asker: _Asker, torrent: Torrent) -> bool:
        signed = asker.signed
        return await self._rights.may_act(signed.user_id, signed.chat_id, torrent.user_id)

    async def _view(self, asker: _Asker, torrent: Torrent) -> dict[str, Any]:
        return download_json(torrent, may_act=await self._may_act(asker, torrent))

    async def _acting_on(self, request: web.Request, asker: _Asker) -> Torrent:
        """The download the request names, when this user may change it."""
        torrent = await self._manager.get(int(request.match_info["id"]), asker.signed.chat_id)
        if not await self._may_act(asker, torrent):
            raise _Refused(403, f"Only the user who added #{torrent.id} or an admin of this "
                                "chat can do that.")
        return torrent

    # --- reading ------------------------------------------------------------------------------

    async def _me(self, _request: web.Request, asker: _Asker) -> web.StreamResponse:
        signed = asker.signed
        return _json({"user": {"id": signed.user_id, "name": signed.first_name},
                      "chat": {"id": signed.chat_id, "title": asker.title,
                               "private": signed.private},
                      "can": {"link": True, "send": self._sender is not None,
                              "mirror": self._manager.mirror_enabled}})

    async def _downloads(self, _request: web.Request, asker: _Asker) -> web.StreamResponse:
        torrents = await self._manager.list(asker.signed.chat_id)
        return _json({"downloads": [await self._view(asker, t) for t in torrents
                                    if t.state is not TorrentState.CANCELLED]})

    async def _files(self, request: web.Request, asker: _Asker) -> web.StreamResponse:
        download_id, chat_id = int(request.match_info["id"]), asker.signed.chat_id
        torrent = await self._manager.get(download_id, chat_id)
        if torrent.state in _CHOOSABLE or torrent.state is TorrentState.METADATA:
            files = await self._manager.files(download_id, chat_id)  # aria2's, live
        else:  # aria2 may have let a finished one go; its metainfo still lists them
            files = await self._manager.own_files(download_id, chat_id)
        editable = (bool(files) and torrent.state in _CHOOSABLE
                    and await self._may_act(asker, torrent))
        return _json(files_json(files, editable=editable))

    async def _events(self, request: web.Request, asker: _Asker) -> web.StreamResponse:
        user_id = asker.signed.user_id
        async def still_allowed() -> bool:
            try:
                await self._asker(request, count=False)
            except _Refused:
                return False
            return True

        stream = ChatStream(asker.signed.chat_id, lambda t: self._may_act(asker, t),
                            self._frames, still_allowed)
        ticket = self._limits.open_stream(user_id, stream.stop)
        unsubscribe = self._manager.subscribe(stream)  # before the snapshot: nothing missed
        try:
            return await stream.serve(request, await self._manager.list(asker.signed.chat_id))
        finally:
            unsubscribe()
            self._limits.close_stream(user_id, ticket)

    # --- acting ---------------------------------------------------------------------------------

    async def _pause_action(self, request: web.Request, asker: _Asker) -> web.StreamResponse:
        torrent = await self._acting_on(request, asker)
        paused = await self._manager.pause(torrent.id, asker.signed.chat_id,
                                           asker.signed.user_id)
        return _json({"download": await self._view(asker, paused)})

    async def _resume_action(self, request: web.Request, asker: _Asker) -> web.StreamResponse:
        torrent = await self._acting_on(request, asker)
        resumed = await self._manager.resume(torrent.id, asker.signed.chat_id,
                                             asker.signed.user_id)
        return _json({"download": await self._view(asker, resumed)})

    async def _cancel_action(self, request: web.Request, asker: _Asker) -> web.StreamResponse:
        body = await _body(request)
        delete_files = body.get("delete_files", False)
        if not isinstance(delete_files, bool):
            raise _Refused(400, "delete_files must be true or false.")
        torrent = await self._acting_on(request, asker)
        result = await self._manager.cancel(torrent.id, asker.signed.chat_id,
                                            asker.signed.user_id, delete_files=delete_files)
        return _json({"message": f"#{result.torrent.id} is cancelled{result.outcome}"})

    async def _files_action(self, request: web.Request, asker: _Asker) -> web.StreamResponse:
        body = await _body(request)
        selected = body.get("selected")
        if (not isinstance(selected, list) or not selected
                or not all(type(n) is int and n > 0 for n in selected)):
            raise _Refused(400, "Choose at least one file.")
        torrent = await self._acting_on(request, asker)
        changed = await self._manager.set_files(torrent.id, sorted(set(selected)),
                                                asker.signed.chat_id, asker.signed.user_id)
        return _json({"download": await self._view(asker, changed)})

    # --- a finished download's files ------------------------------------------------------------

    async def _link_action(self, request: web.Request, asker: _Asker) -> web.StreamResponse:
        """Anyone in the chat may have a link, as anyone may with /link."""
        made = await self._manager.link(int(request.match_info["id"]), asker.signed.chat_id,
                                        asker.signed.user_id)
        return _json({"url": made.url, "expires_at": made.expires_at.isoformat()})

    async def _send_action(self, request: web.Request, asker: _Asker) -> web.StreamResponse:
        """Anyone in the chat may have the files sent there, as with the Send button."""
        if self._sender is None:
            raise _Refused(409, "Sending files is off here.")
        try:
            said = await self._sender.send_to_chat(asker.signed.chat_id,
                                                   int(request.match_info["id"]))
        except ValueError as refused:
            raise _Refused(409, str(refused)) from None
        return _json({"message": said})

    async def _mirror_action(self, request: web.Request, asker: _Asker) -> web.StreamResponse:
        torrent = await self._acting_on(request, asker)
        changed = await self._manager.mirror(torrent.id, asker.signed.chat_id,
                                             asker.signed.user_id)
        return _json({"download": await self._view(asker, changed),
                      "message": f"#{torrent.id} is being uploaded to the cloud."})


async def _body(request: web.Request) -> dict[str, Any]:
    """A POST's JSON object; a wrong type, size or shape is a 400 (nothing is done)."""
    if request.content_type != "application/json":
        raise _Refused(415, "Send JSON.")
    if request.content_length is not None and request.content_length > _MAX_BODY:
        raise _Refused(413, "This request is too large.")
    raw = await request.content.read(_MAX_BODY + 1)
    if len(raw) > _MAX_BODY:
        raise _Refused(413, "This request is too large.")
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise _Refused(400, "This request is not valid JSON.") from None
    if not isinstance(body, dict):
        raise _Refused(400, "This request is not valid JSON.")
    return body


def _read_static() -> dict[str, bytes]:
    folder = resources.files("web.miniapp") / "static"
    return {name: (folder / name).read_bytes() for name, _ in _STATIC.values()}
