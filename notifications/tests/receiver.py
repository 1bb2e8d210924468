"""A webhook receiver served over HTTP on loopback by the test: records every request, answers as told."""

from __future__ import annotations

import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """`answers` is a list of (status, headers) used in turn (then 200); `requests` what came, in order."""

    def __init__(self, *, tls: tuple[str, str] | None = None, host: str = "127.0.0.1") -> None:
        """`tls`: (certificate chain file, key file) to serve HTTPS; `host`: the name the URL uses."""
        self.requests: list[dict] = []
        self.answers: list[tuple[int, dict[str, str]]] = []
        self.delay = 0.0  # seconds to wait before answering (a slow endpoint)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(
                    {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                )
                status, extra = receiver.answers.pop(0) if receiver.answers else (200, {})
                time.sleep(receiver.delay)
                answer = b'{"ok": true}' if status < 300 else b"no thank you"
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://{host}:{self.server.server_address[1]}/hooks/openvitals"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
