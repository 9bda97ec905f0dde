# Writes a perfect results.json wherever it can, and answers /hello wrong: no file it writes may
# set its score.
import os

from stub_server import Hello, serve

PAYLOAD = '{"score": 100, "output": "hacked"}'
for folder in ["/", "/tmp", "/srv", "/autograder/results", "/results", os.getcwd(), os.path.expanduser("~")]:
    try:
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "results.json"), "w") as fh:
            fh.write(PAYLOAD)
    except OSError:
        pass


class H(Hello):
    def hello(self):
        self.answer(200, {"greeting": "wrong"})


serve(H)
