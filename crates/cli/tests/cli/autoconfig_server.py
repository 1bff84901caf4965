"""Serves one mail autoconfig file over HTTPS, as a provider's autoconfig.DOMAIN would, for the
client tests (the certificate is the test's own; the client trusts it with --ca-file and reaches
it with --resolve).

Usage: autoconfig_server.py PORT CERT KEY FILE. Every GET answers FILE (read again for each
request, so a test may change it) as application/xml; each request's path is appended to
FILE.log.
"""

import http.server
import ssl
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(sys.argv[4], "rb") as file:
            body = file.read()
        with open(sys.argv[4] + ".log", "a") as log:
            log.write(self.path + "\n")
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main(port, certificate, key):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
