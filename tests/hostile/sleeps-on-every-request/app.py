# Answers /hello correctly, after 30 s each time.
import os
import time

from stub_server import Hello, serve

GREETING = os.environ.get("GREETING", "?")


class H(Hello):
    def hello(self):
        time.sleep(30)
        self.answer(200, {"greeting": GREETING})


serve(H)
