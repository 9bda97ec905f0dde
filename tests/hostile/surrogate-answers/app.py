# Answers JSON whose string holds a lone surrogate escape: decoded, it is a str no UTF-8 writer
# accepts. The grade must still be written (not "not graded", which a batch would retry).
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class H(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        body = b'{"status": "ok"}' if self.path == "/health" else b'{"greeting": "hi \\ud800 \\udfff"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer(("0.0.0.0", 8000), H).serve_forever()
