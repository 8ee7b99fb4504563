"""The HTTP server of signed links: a finished download's page and its own files.

A room of its own: it knows the manager (what a link opens) and nothing of Telegram or of
the supervisor, which builds it (:class:`LinkServer`) when ``ARIABOT_PUBLIC_URL`` is set.
"""

from web.server import LinkOpener, LinkServer, build_app

__all__ = ["LinkOpener", "LinkServer", "build_app"]
