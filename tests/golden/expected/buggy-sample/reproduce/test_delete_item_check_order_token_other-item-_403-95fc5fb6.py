#!/usr/bin/env python3
# Replays the grader's test test_delete_item_check_order[token+other-item->403] against your app.
# What it checks: DELETE /items/{item_id} must check authentication (401), then the input (422), then that the item exists (404), then ownership (403).
#
# The test's 2 request(s), after 4 that earlier tests made and it relies on (users, tokens, things).
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
    email_2 = f"shared-other-{RUN}@example.com"

    # 1. POST /users/ (made by the earlier test test_token_returns_bearer_token)
    status, answer = send("POST", "/users/", headers={"content-type": "application/json"}, json_body={"email": email_1, "password": "correct-horse-42"})

    # 2. POST /users/ (made by the earlier test test_token_returns_bearer_token)
    status, answer = send("POST", "/users/", headers={"content-type": "application/json"}, json_body={"email": email_2, "password": "correct-horse-42"})
    user_id = pick(answer, "id")

    # 3. POST /token (made by the earlier test test_token_returns_bearer_token)
    status, answer = send("POST", "/token", headers={"content-type": "application/x-www-form-urlencoded"}, form={"username": email_1, "password": "correct-horse-42"})
    access_token = pick(answer, "access_token")

    # 4. POST /token (made by the earlier test test_list_items_has_new_items_in_id_order)
    status, answer = send("POST", "/token", headers={"content-type": "application/x-www-form-urlencoded"}, form={"username": email_2, "password": "correct-horse-42"})
    access_token_2 = pick(answer, "access_token")

    # 5. POST /users/{user_id}/items/
    status, answer = send("POST", f"/users/{user_id}/items/", headers={"authorization": f"Bearer {access_token_2}", "content-type": "application/json"}, json_body={"title": "A title"})
    item_id = pick(answer, "id")

    # 6. DELETE /items/{item_id} — the request the check failed on
    status, answer = send("DELETE", f"/items/{item_id}", headers={"authorization": f"Bearer {access_token}"})

    show("status 403", "status 204, empty body", status)


# How the requests are sent and the answers shown -----------------------------------------------
class _Redirect(urllib.request.HTTPRedirectHandler):
    def redir