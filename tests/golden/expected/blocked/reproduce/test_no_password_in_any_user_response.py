#!/usr/bin/env python3
# Replays the grader's test test_no_password_in_any_user_response against your app.
# What it checks: No answer about a user (POST /users/, GET /users/{user_id}, GET /users/, POST /token, GET /users/me, GET /users/me/basic) may contain a password or hashed_password property.
#
# The test's 5 request(s).
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
    email_1 = f"test-no-password-in-any-user--35b5b5-1-{RUN}@example.com"

    # 1. POST /users/
    status, a