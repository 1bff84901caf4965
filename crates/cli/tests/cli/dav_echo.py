"""Any back end behind the DAV door: CPython's wsgiref (the server Radicale's own runs on), with
threads, answering every request with what it received. Usage: dav_echo.py
Prints its port on the first line, then serves until killed.

The answer is JSON: the method, the path, the raw header lines as they arrived (name and value,
in order), the WSGI environment's HTTP_* variables (where wsgiref maps `-` to `_` and joins
duplicates with `,`, as it does for Radicale), and the body's length and SHA-256, read in
blocks so that a large body costs no memory here.
"""

import hashlib
import json
import socketserver
import sys
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class Handler(WSGIRequestHandler):
    def get_environ(self):
        environ = super().get_environ()
        environ["echo.raw_headers"] = [[name, value] for name, value in self.headers.items()]
        return environ

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


def app(environ, start_response):
    digest, length = hashlib.sha256(), 0
    remaining = int(environ.get("CONTENT_LENGTH") or 0)
    while remaining > 0:
        block = environ["wsgi.input"].read(min(remaining, 1 << 16))
        if not block:
            break
        digest.update(block)
        length += len(block)
        remaining -= len(block)
    seen = {
        "method": environ["REQUEST_METHOD"],
        "path": environ["PATH_INFO"],
        "raw_headers": environ["echo.raw_headers"],
        "environ": {key: value for key, value in environ.items() if key.startswith("HTTP_")},
        "content_length": environ.get("CONTENT_LENGTH"),
        "body_length": length,
        "body_sha256": digest.hexdigest(),
    }
    body = json.dumps(seen).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


if __name__ == "__main__":
    server = make_server("127.0.0.1", 0, app, server_class=Server, handler_class=Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()
