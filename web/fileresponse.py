"""aiohttp's ``FileResponse`` (Range, ``If-Range``, conditional requests, ``sendfile``),
minus one thing: serving a compressed sibling.

When a request accepts gzip or brotli, aiohttp sends ``<file>.gz``/``<file>.br`` instead of
the file if such a file exists beside it. In a chat folder that sibling may be another
download's file, or anything at all: a link must serve exactly the file it names.

It may be sent before the handler returns (the server's load bound holds a slot while a
file streams); the second ``prepare`` aiohttp then calls does nothing.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.web_request import BaseRequest

__all__ = ["OwnFileResponse"]


class OwnFileResponse(web.FileResponse):
    """A ``FileResponse`` that serves only its own path, a regular file, never a symlink."""

    def _get_file_path_stat_encoding(
        self, accept_encoding: str
    ) -> tuple[Path | None, os.stat_result, str | None]:
        status = self._path.lstat()
        return (self._path if stat.S_ISREG(status.st_mode) else None), status, None

    async def prepare(self, request: BaseRequest) -> AbstractStreamWriter | None:
        """Send the file (once: a second call, after it was sent, does nothing)."""
        if self.prepared:
            return None
        return await super().prepare(request)
