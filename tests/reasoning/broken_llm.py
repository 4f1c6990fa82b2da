"""A tiny local HTTP server standing in for a broken OpenAI-compatible LLM server.

It lists one model on ``GET /v1/models`` (so a ping succeeds) and answers every
``POST /v1/chat/completions`` with the status, body and content type it was given: what a
real vLLM cannot be made to do on demand (a 400 for every request, a 200 that is not JSON).

    with BrokenLLM(200, b"not json", "text/plain") as llm:
        llm.base_url            # http://127.0.0.1:PORT/v1
        llm.completions         # how many completion requests arrived
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

MODELS = {"object": "list", "data": [{"id": "m", "object": "model", "owned_by": "me"}]}
ERROR_400 = json.dumps(
    {"error": {"message": "this model's maximum context length is 8", "type": "BadRequest"}}
).encode()


class BrokenLLM:
    def __init__(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.status, self.body, self.content_type = status, body, content_type
        self.completions = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._send(200, json.dumps(MODELS).encode(), "application/json")

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                outer.completions += 1
                self._send(outer.status, outer.body, outer.content_type)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> BrokenLLM:
        self.thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        err: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.shutdown()
        self.server.server_close()
