# Answers /hello correctly while printing as fast as it can.
import os
import threading

from stub_server import Hello, serve

GREETING = os.environ.get("GREETING", "?")


def flood():
    line = "x" * 1000
    while True:
        print(line, flush=False)


threading.Thread(target=flood, daemon=True).start()


class H(Hello):
    def hello(self):
        self.answer(200, {"greeting": GREETING})


serve(H)
