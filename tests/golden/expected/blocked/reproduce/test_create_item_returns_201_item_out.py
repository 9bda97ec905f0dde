#!/usr/bin/env python3
# Replays the grader's test test_create_item_returns_201_item_out against your app.
# What it checks: POST /users/{user_id}/items/ must answer 201 with {id, title, description, owner_id = user_id}.
#
# The test's 1 request(s), after 1 that earlier tests made and it relies on (users, tokens, things).
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
    email_1 = f"shared-owner-{RUN}@example.com"

    # 1. POST /users/ (made by the earlier test test_token_return