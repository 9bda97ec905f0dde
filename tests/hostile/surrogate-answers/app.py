# Answers JSON whose string holds a lone surrogate escape: decoded, it is a str no UTF-8 writer
# accepts. The grade must still be written (not "not graded", which a batch would retry).
from stub_server import Handler, serve


class H(Handler):
    def do_GET(self):
        if not self.health():
            self.answer(200, {"greeting": "hi \ud800 \udfff"})  # sent as "hi \\ud800 \\udfff"


serve(H)
