#!/usr/bin/env python3
# Replays the grader's test test_password_length_bounds_are_accepted[128] against your app.
# What it checks: Passwords of exactly 8 and exactly 128 characters must be accepted (201).
#
# The test's 1 request(s).
# Tokens and ids are read from your app's own answers; e-mail addresses are new on
# every run, so it runs again and again on the same database.
#
# Run it:  python THIS_FILE [BASE_URL]    (default BASE_URL: http://localhost:8000)
# Python 3, standard library only. The requests are in main(); the helpers after it.

import base64, hashlib, hmac, json, sys, time, urllib.error, urllib.parse, urllib.request, uuid

BASE = (sys.argv[1] if len(sys.argv) > 1 else "http://localhost:8000").rstrip("/")
RUN = uuid.uuid4().hex[:8]  # new on every run: e-mail addresses below are new each time
NOW = int(time.time())
if hasattr(sys.stdout, "reconfigure"):
    sys.stdout.reconfigure(errors="replace")  # any answer prints, whatever the console's encoding



def main():
    email_1 = f"test-password-length-bounds-a-b4ccaf-1-{RUN}@example.com"

    # 1. POST /users/ — the request the check failed on
    status, answer = send("POST", "/users/", headers={"content-type": "application/json"}, json_body={"email": email_1, "password": "pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp"})

    show("status 201", "status 200, body {\"id\": 11, \"email\": \"test-password-length-bounds-a-b4ccaf-1@example.com\", \"is_active\": true}", status)


# How the requests are sent and the answers shown -----------------------------------------------
class _Redirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect is shown as the answer, as the grader saw it


OPENER = urllib.request.build_opener(_Redirect, urllib.request.ProxyHandler({}))
STEP = [0]


def send(method, path, headers=None, json_body=None, form=None, data=None):
    """Send one request to BASE + path, print it and the answer; (status, answer as JSON or text)."""
    STEP[0] += 1
    headers = dict(headers or {})
    body = None
    if json_body is not None:
        body = json.dumps(json_body).encode()
    elif form is not None:
        body = urllib.parse.urlencode(form).encode()
    elif data is not None:
        body = data.encode()
    print(f"\n[{STEP[0]}] {method} {BASE}{path}")
    for name, value in headers.items():
        print(f"    {name}: {value}")
    if body:
        print("    " + body.decode(errors="replace")[:1000])
    request = urllib.request.Request(BASE + path, data=body, headers=headers, method=method)
    try:
        with OPENER.open(request, timeout=30) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    except OSError as error:
        print(f"--> no answer: {error}")
        return None, None
    text =