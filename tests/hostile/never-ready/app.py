# Every path answers 503, the health path too (requests are logged, as http.server does).
from http.server import BaseHTTPRequestHandler

from stub_server import serve


class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(503)
        self.end_headers()


serve(H)
