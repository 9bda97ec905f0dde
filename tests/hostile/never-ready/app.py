from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(503)
        self.end_headers()


ThreadingHTTPServer(("0.0.0.0", 8000), H).serve_forever()
