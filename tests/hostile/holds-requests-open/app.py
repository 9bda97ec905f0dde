# Healthy, but every other request is accepted and never answered.
import time

from stub_server import Handler, serve


class H(Handler):
    def _hold(self):
        if self.health():
            return
        time.sleep(3600)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _hold


serve(H)
