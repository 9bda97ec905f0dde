# /hello announces a 1 GiB body and sends it.
from stub_server import Hello, serve


class H(Hello):
    def hello(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(1024**3))
        self.end_headers()
        chunk = b" " * (1024 * 1024)
        for _ in range(1024):
            self.wfile.write(chunk)


serve(H)
