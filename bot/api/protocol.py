"""The HTTP/1.1 protocol `govqa serve` runs: uvicorn's, on httptools' C parser, made safe to face
clients that misbehave.

httptools has no limit on the size of a request's head: a 100 MB header cost the server 15.7 s of
CPU (the parser joins a header value piece by piece) and every other answer waited. h11, uvicorn's
other parser, refuses past 16 KB at once but is slower. This protocol keeps httptools and counts
the bytes of each request head (request line and headers) itself, before they reach the parser:
past MAX_HEADER_BYTES the request is refused with 431 and the connection closed, having parsed at
most the limit and one read more.

It also answers the requests the parser rejects with a problem document instead of uvicorn's
plain-text 400, and takes a request line with raw UTF-8 in it (curl sends `?q=法律意见书` as is) by
percent-encoding those bytes before the strict parser sees them."""

from __future__ import annotations

import contextlib
import json
import socket

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEADER_BYTES = 16 * 1024  # request line and headers together, as h11's default limit in uvicorn
_HEAD_ENDS = (b"\r\n\r\n", b"\n\n")
_REASONS = {400: b"Bad Request", 431: b"Request Header Fields Too Large"}


def _problem_bytes(status: int, detail: str) -> bytes:
    body = json.dumps({"type": "about:blank", "title": _REASONS[status].decode(), "status": status,
                       "detail": detail}).encode()
    return b"".join([b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status]),
                     b"content-type: application/problem+json\r\n",
                     b"content-length: %d\r\n" % len(body), b"connection: close\r\n\r\n", body])


def _percent_encode_high(line: bytes) -> bytes:
    """Bytes over 0x7F (raw UTF-8) as %XX; the rest as it is."""
    return b"".join(b"%%%02X" % b if b > 0x7F else bytes((b,)) for b in line) if max(line, default=0) > 0x7F else line


class GovqaHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a limit on request heads, problem+json 400s, raw UTF-8
    request lines percent-encoded, and Nagle's algorithm off.

    Nagle: with --workers uvicorn listens on a socket it made itself, on which asyncio does not set
    TCP_NODELAY; each response then waited ~40 ms for the client's delayed ACK (21 requests/s at
    concurrency 1). httptools rather than h11: two processes served 197 requests/s instead of 164
    in one A/B run (bench/load.py)."""

    max_header_bytes = MAX_HEADER_BYTES

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # the bytes coming are a request's head (or the start of the next one)
        self._in_request_line = True
        self._head_bytes = 0
        self._refused = False

    def connection_made(self, transport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)

    def _refuse(self, status: int, detail: str) -> None:
        if self._refused or self.transport is None or self.transport.is_closing():
            return
        self._refused = True
        self.logger.warning("refused a request from %s: %s", self.client and self.client[0], detail)
        self.transport.write(_problem_bytes(status, detail))
        self.transport.close()

    def _too_large(self) -> None:
        self._refuse(431, f"the request line and headers are larger than {self.max_header_bytes} bytes")

    def data_received(self, data: bytes) -> None:
        if self._refused or self.parser is None:
            return
        self._unset_keepalive_if_required()
        if self._in_request_line:
            end = data.find(b"\n")
            line = data if end < 0 else data[:end]
            if max(line, default=0) > 0x7F:
                data = _percent_encode_high(line) + (b"" if end < 0 else data[end:])
            self._in_request_line = end < 0
        if self._in_head:
            # count the head's bytes before the parser sees them: up to its end when it ends here
            ends = [i + len(mark) for mark in _HEAD_ENDS if (i := data.find(mark)) >= 0]
            self._head_bytes += min(ends) if ends else len(data)
            if self._head_bytes > self.max_header_bytes:
                self._too_large()
                return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError:
            if self._refused:
                return
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("the request could not be read")
        except httptools.HttpParserError as exc:
            self.logger.warning("Invalid HTTP request received: %s", exc)
            self.send_400_response(f"the request is not valid HTTP/1.1 ({exc}); a query string's "
                                   "non-ASCII characters are percent-encoded (curl -G --data-urlencode)")
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, msg)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True

    def on_headers_complete(self) -> None:
        # the exact size, also for a pipelined request whose start came in an earlier request's read
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        self._in_head = False
        self._head_bytes = 0
        if size > self.max_header_bytes:
            self._too_large()
            raise httptools.HttpParserCallbackError("request head too large")
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_head = True
        self._in_request_line = True
        self._head_bytes = 0
        super().on_message_complete()
