"""The Mini App: a chat's downloads, their files and their controls on one page in Telegram.

:mod:`~web.miniapp.identity` checks who asks (Telegram's signed initData),
:mod:`~web.miniapp.rights` is what the bot says of a chat's rules,
:mod:`~web.miniapp.app` the page and its JSON API, :mod:`~web.miniapp.stream` the live
updates, :mod:`~web.miniapp.views` the JSON, :mod:`~web.miniapp.limits` the per-user bounds.
"""

from web.miniapp.app import MiniApp
from web.miniapp.identity import InitDataCheck, NotSigned, Signed
from web.miniapp.limits import UserLimits
from web.miniapp.rights import ChatRights, ChatSender

__all__ = ["ChatRights", "ChatSender", "InitDataCheck", "MiniApp", "NotSigned", "Signed",
           "UserLimits"]
