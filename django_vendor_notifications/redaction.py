"""Keep access tokens out of log lines that servers write with a request's query string.

The app never logs a token, but servers log what a client asked for: uvicorn prints each
socket's request target with its query string, and daphne's ``runserver`` and uvicorn's access
log print every HTTP request's, so a browser tab opened on the socket URL with ``?token=`` would
leave a live token in the log. ``RedactTokens`` is a logging filter that replaces the value of
the token parameter (``TOKEN_QUERY_PARAMETER``) with ``[redacted]`` in a record's message and
arguments. Put it on the handlers those loggers write to (the example project's ``LOGGING``
does; docs/security.md shows uvicorn's ``--log-config``).
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from typing import Any

REDACTED = "[redacted]"


@lru_cache(maxsize=8)
def _pattern(parameter: str) -> re.Pattern[str]:
    # The value runs to the next &, whitespace, quote or fragment: as a log line delimits it.
    return re.compile(rf"([?&]{re.escape(parameter)}=)[^&#\s\"']+")


def token_parameter() -> str:
    """The query parameter that carries tokens (``token`` before Django is configured)."""
    try:
        from .conf import app_settings

        return app_settings.TOKEN_QUERY_PARAMETER
    except Exception:  # settings not configured: a filter must never break logging
        return "token"


def redact(text: str, parameter: str | None = None) -> str:
    """``text`` with every ``?token=...`` / ``&token=...`` value replaced by [redacted]."""
    return _pattern(parameter or token_parameter()).sub(rf"\g<1>{REDACTED}", text)


def _redact_value(value: Any, parameter: str) -> Any:
    if isinstance(value, str):
        return redact(value, parameter)
    if isinstance(value, bytes):
        return redact(value.decode("latin-1"), parameter).encode("latin-1")
    return value


class RedactTokens(logging.Filter):
    """A logging filter: the record stays, its token values do not."""

    def filter(self, record: logging.LogRecord) -> bool:
        parameter = token_parameter()
        if isinstance(record.msg, str):
            record.msg = redact(record.msg, parameter)
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_value(arg, parameter) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _redact_value(v, parameter) for key, v in record.args.items()}
        return True
