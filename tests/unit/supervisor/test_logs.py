"""Secrets never reach a log line, whoever logs them."""

from __future__ import annotations

import io
import logging

from supervisor.logs import MASK, RedactingFormatter


def test_registered_secrets_are_masked_in_any_logger() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    formatter = RedactingFormatter("%(name)s %(message)s", ["123:TOKEN"])
    formatter.add_secret("rpcsecret")
    formatter.add_secret("")
    handler.setFormatter(formatter)
    logger = logging.getLogger("httpx.test")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("POST https://api/bot123:TOKEN/getMe with token:%s", "rpcsecret")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "TOKEN" not in text and "rpcsecret" not in text
    assert text.count(MASK) == 2
