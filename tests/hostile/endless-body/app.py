# /hello answers 200 and then a body that never ends, as fast as the grader reads.
from stub_server import Handler, serve


class H(Handler):
    def do_GET(self):
        if self.health():
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()  # no length: the body ends when the connection does, i.e. never
        chunk = b" " * 65536
        try:
            while True:
                self.wfile.write(chunk)
        except OSError:
            pass


serve(H)
