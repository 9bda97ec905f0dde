# Healthy, but every other answer comes one byte per second (ten minutes each): every read of the
# grader's gets a byte in time.
import time

from stub_server import Handler, serve

GREETING = b" " * 600 + b'{"greeting": "hello"}'


class H(Handler):
    def _trickle(self):
        if self.health():
            return
        answer = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (len(GREETING), GREETING))
        try:
            for byte in answer:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(1)
        except OSError:
            pass

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _trickle


serve(H)
