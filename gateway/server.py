"""The gateway's HTTP server: uvicorn with h11 and limits of its own (issue 12, item 5).

``python -m gateway.server [--host H] [--port P] [--workers N]`` (``GATEWAY_HOST``,
``GATEWAY_PORT``, ``GATEWAY_WORKERS``). What it refuses before the app sees a request:

- a request line plus headers over ``HTTP_MAX_HEADER_BYTES`` (16 KiB): 431;
- more than ``HTTP_MAX_HEADERS`` (100) header fields: 431;
- a request head not complete within ``HTTP_HEADER_TIMEOUT_S`` (10 s) of the connection's
  start or of the previous answer (slow-loris): 408 and the connection closed;
- a body that pauses longer than ``HTTP_BODY_TIMEOUT_S`` (30 s) between two reads (nginx's
  ``client_body_timeout``; time the server itself holds reading back does not count): 408
  when no answer has begun, and the connection closed either way (the app sees a
  disconnect);
- anything h11 cannot parse: 400.

Each in the one JSON error shape, with ``Connection: close``. h11 rather than httptools
(uvicorn's default when installed), because h11 bounds what it buffers of an incomplete head
(``h11_max_incomplete_event_size``) while httptools accepts a header of any size; h11 counts
no fields and keeps no time, hence the small protocol subclass here. Idle keep-alive
connections are closed after uvicorn's 5 s. Only a caller with a valid key gets as far as
sending a body (gateway/auth_middleware.py answers everyone else from the headers), and a
proxy in front buffers bodies (docs/nginx.conf).
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import http
import json
import os
import uuid
from typing import Any

import h11
import uvicorn
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from common.settings import get_settings, load_or_exit

APP = "gateway.app:app"
PROTOCOL = "gateway.server:GuardedH11Protocol"


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header-count limit, a head deadline and JSON refusals."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        settings = get_settings()
        self.max_headers = settings.http_max_headers
        self.max_header_bytes = settings.http_max_header_bytes
        self.head_timeout_s = settings.http_header_timeout_s
        self.body_timeout_s = settings.http_body_timeout_s
        self.head_deadline: asyncio.TimerHandle | None = None
        self.body_deadline: asyncio.TimerHandle | None = None
        self.head_bytes = 0
        self.refusal: tuple[int, str, str] | None = None
        parse = self.conn.next_event

        def next_event() -> Any:
            # Wraps h11's parser so that uvicorn's own error path (send_400_response) can be
            # told what went wrong: h11 hints 431 for an over-long head; we add the count.
            try:
                event = parse()
            except h11.RemoteProtocolError as error:
                if error.error_status_hint == 431:
                    limit = f"the request head is larger than {self.max_header_bytes} bytes"
                    self.refusal = (431, "request_header_fields_too_large", limit)
                raise
            if isinstance(event, h11.Request):
                self.cancel_deadline()
                if len(event.headers) > self.max_headers:
                    limit = f"more than {self.max_headers} header fields"
                    self.refusal = (431, "request_header_fields_too_large", limit)
                    raise h11.RemoteProtocolError(limit, error_status_hint=431)
                self.arm_body_deadline()
            elif isinstance(event, h11.EndOfMessage):
                self.cancel_body_deadline()
            return event

        self.conn.next_event = next_event  # type: ignore[method-assign]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.arm_deadline()

    def data_received(self, data: bytes) -> None:
        if self.head_deadline is not None:
            self.head_bytes += len(data)
        if self.body_deadline is not None:
            self.arm_body_deadline()  # the pause is counted from the last read
        super().data_received(data)

    def on_response_complete(self) -> None:
        # Armed before the next cycle starts, since that may parse a pipelined head at once.
        self.arm_deadline()
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self.cancel_deadline()
        self.cancel_body_deadline()
        super().connection_lost(exc)

    def arm_deadline(self) -> None:
        self.cancel_deadline()
        self.head_bytes = 0
        # A context of its own: the timer outlives the request that armed it (its log lines
        # must not carry that request's id).
        self.head_deadline = self.loop.call_later(
            self.head_timeout_s, self.head_timed_out, context=contextvars.Context()
        )

    def cancel_deadline(self) -> None:
        if self.head_deadline is not None:
            self.head_deadline.cancel()
            self.head_deadline = None

    def head_timed_out(self) -> None:
        self.head_deadline = None
        if self.transport.is_closing() or self.conn.our_state is not h11.IDLE:
            return
        if self.head_bytes == 0:  # an idle connection: nobody is waiting for an answer
            self.transport.close()
            return
        message = f"the request head did not arrive within {self.head_timeout_s:g} s"
        self.refuse(408, "request_timeout", message)

    def arm_body_deadline(self) -> None:
        self.cancel_body_deadline()
        self.body_deadline = self.loop.call_later(
            self.body_timeout_s, self.body_timed_out, context=contextvars.Context()
        )

    def cancel_body_deadline(self) -> None:
        if self.body_deadline is not None:
            self.body_deadline.cancel()
            self.body_deadline = None

    def body_timed_out(self) -> None:
        self.body_deadline = None
        if self.transport.is_closing() or self.conn.their_state is not h11.SEND_BODY:
            return
        waiting_for_us = self.cycle is not None and self.cycle.waiting_for_100_continue
        if self.flow.read_paused or waiting_for_us:  # the app is behind, not the client
            self.arm_body_deadline()
            return
        message = f"the request body paused for more than {self.body_timeout_s:g} s"
        if self.conn.our_state is h11.SEND_RESPONSE and not self.transport.is_closing():
            self.refuse(408, "request_timeout", message)
        else:
            self.logger.warning("closed a connection: %s", message)
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        status, code, message = self.refusal or (400, "bad_request", "invalid HTTP request")
        self.refuse(status, code, message)

    def refuse(self, status: int, code: str, message: str) -> None:
        """Answer in the one error shape and close (the rest of the request is not read)."""
        request_id = uuid.uuid4().hex  # the app's request id middleware never saw this one
        body = json.dumps(
            {"error": {"code": code, "message": message, "request_id": request_id}}
        ).encode()
        self.logger.warning("refused a request: %s %s", status, message)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            (b"x-request-id", request_id.encode()),
        ]
        try:
            reason = http.HTTPStatus(status).phrase.encode()
            start = h11.Response(status_code=status, headers=headers, reason=reason)
            output = self.conn.send(start) or b""
            output += self.conn.send(h11.Data(data=body)) or b""
            output += self.conn.send(h11.EndOfMessage()) or b""
            self.transport.write(output or b"")
        except h11.LocalProtocolError:
            pass  # a response had already begun: closing is all that is left
        self.transport.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway.server", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("GATEWAY_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GATEWAY_PORT", "8000")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("GATEWAY_WORKERS", "1")))
    args = parser.parse_args(argv)
    settings = load_or_exit()
    uvicorn.run(
        APP,
        host=args.host,
        port=args.port,
        workers=args.workers,
        http=PROTOCOL,
        h11_max_incomplete_event_size=settings.http_max_header_bytes,
        # Behind a proxy, set FORWARDED_ALLOW_IPS to its address (uvicorn reads it; the
        # default trusts 127.0.0.1), so the failure limit counts the real client address.
        proxy_headers=True,
        server_header=False,
        timeout_keep_alive=5,
    )


if __name__ == "__main__":
    main()
