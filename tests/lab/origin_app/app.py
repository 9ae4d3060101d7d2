# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The WSGI application: pages, JSON API, webhook receiver and health check (see __init__.py for its settings).

| path | who | what |
|---|---|---|
| ``/`` | anyone | home page (where the stale preview links and the mixed-content image, ``http://<host>/static/logo.svg``, live) |
| ``/login`` (GET, POST), ``/logout`` | anyone | session cookie ``session`` (HttpOnly, SameSite=Lax, Secure over HTTPS) |
| ``/members``, ``/members/<id>`` | signed in | member search (``?q=``) and one member |
| ``/admin``, ``/admin/payments`` | the admin | dashboard, payment statuses and the webhooks received |
| ``/api/health`` | anyone | ``{"status": "ok"}`` |
| ``/api/members`` | session or ``Authorization: Bearer <API_TOKEN>`` | members as JSON (``?q=``) |
| ``POST /webhooks/payments`` | the payment provider | JSON event, ``X-Signature: sha256=<hex HMAC of the body>`` |
| ``/healthz`` | anyone | ``{"status", "version", "release", "started_at", "pid"}`` |
| ``/static/...`` | anyone | CSS, JS, SVG with ``Cache-Control: public, max-age=86400`` |

Signed-in pages and the API answer ``Cache-Control: private, no-store``: no cache may keep them.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import hmac
import html
import json
import mimetypes
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from . import __version__, members

STATIC = Path(__file__).resolve().parent / "static"
SESSION_COOKIE = "session"
SESSION_SECONDS = 8 * 3600
DEV_SECRET = "launch-demo-development-key-not-a-secret"
PREVIEW_URL = "https://launch-demo.vercel.app"
STARTED_AT = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

Headers = list[tuple[str, str]]
StartResponse = Callable[[str, Headers], Any]


class Answer:
    def __init__(self, status: int, body: bytes | str, content_type: str = "text/html; charset=utf-8", headers: Headers | None = None):
        self.status = status
        self.body = body.encode("utf-8") if isinstance(body, str) else body
        self.headers = [("Content-Type", content_type)] + (headers or [])


def _json(status: int, payload: Any, headers: Headers | None = None) -> Answer:
    return Answer(status, json.dumps(payload, indent=1), "application/json", headers)


class Settings:
    def __init__(self, environ: dict[str, str]):
        self.release = environ.get("APP_RELEASE") or __version__
        self.secret = (environ.get("SECRET_KEY") or DEV_SECRET).encode("utf-8")
        self.webhook_secret = environ.get("WEBHOOK_SECRET", "").encode("utf-8")
        self.admin_email = environ.get("ADMIN_EMAIL", "admin@launch-demo.test")
        self.admin_password = environ.get("ADMIN_PASSWORD", "lab-demo-password")
        self.api_token = environ.get("API_TOKEN", "")
        self.flags_file = environ.get("ORIGIN_FLAGS_FILE", "")

    def flags(self) -> dict[str, Any]:
        flags: dict[str, Any] = {"stale_preview_links": True, "mixed_content": True, "slow_ms": 0}
        if self.flags_file:
            with contextlib.suppress(OSError, ValueError):
                flags.update(json.loads(Path(self.flags_file).read_text(encoding="utf-8")))
        return flags


class App:
    def __init__(self, environ: dict[str, str] | None = None):
        self.settings = Settings(dict(os.environ if environ is None else environ))
        self.webhooks: deque[dict[str, Any]] = deque(maxlen=50)
        self.lock = threading.Lock()
        if not os.environ.get("SECRET_KEY") and environ is None:
            print("origin_app: SECRET_KEY is not set: sessions are signed with an insecure development key", file=sys.stderr, flush=True)
        print("origin_app %s (release %s) ready" % (__version__, self.settings.release), file=sys.stderr, flush=True)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            answer = self.route(environ)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            print("origin_app: error on %s: %r" % (environ.get("PATH_INFO"), exc), file=sys.stderr, flush=True)
            answer = Answer(500, _page("Error", "<p>Something went wrong.</p>"))
        headers = [*answer.headers, ("Content-Length", str(len(answer.body))), ("X-App-Release", self.settings.release)]
        start_response("%d %s" % (answer.status, HTTPStatus(answer.status).phrase), headers)
        return [b"" if environ.get("REQUEST_METHOD") == "HEAD" else answer.body]

    # Routing

    def route(self, environ: dict[str, Any]) -> Answer:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/") or "/"
        query = parse_qs(environ.get("QUERY_STRING", ""))
        user = self.session_user(environ)
        if path.startswith("/static/"):
            return self.static(path[len("/static/"):])
        if method in ("GET", "HEAD"):
            page = {"/": self.home, "/login": self.login_form, "/logout": self.logout, "/healthz": self.healthz,
                    "/api/health": lambda *_args: _json(200, {"status": "ok"})}.get(path)
            if page is not None:
                return page(environ, user, query)
            if path == "/api/members":
                return self.api_members(environ, user, query)
            if path == "/members" or path.startswith("/members/") or path.startswith("/admin"):
                return self.signed_in_page(environ, path, user, query)
        elif method == "POST":
            if path == "/login":
                return self.login(environ)
            if path == "/webhooks/payments":
                return self.webhook(environ)
        else:
            return Answer(405, _page("Method not allowed", ""), headers=[("Allow", "GET, HEAD, POST")])
        return Answer(404, _page("Not found", "<p>There is no page here.</p>"))

    # Sessions

    def sign(self, payload: dict[str, Any]) -> str:
        data = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode("utf-8")).decode("ascii").rstrip("=")
        mac = hmac.new(self.settings.secret, data.encode("ascii"), hashlib.sha256).hexdigest()
        return "%s.%s" % (data, mac)

    def session_user(self, environ: dict[str, Any]) -> dict[str, Any] | None:
        for part in environ.get("HTTP_COOKIE", "").split(";"):
            name, _sep, value = part.strip().partition("=")
            if name != SESSION_COOKIE or "." not in value:
                continue
            data, mac = value.rsplit(".", 1)
            expected = hmac.new(self.settings.secret, data.encode("ascii"), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(mac, expected):
                return None
            try:
                payload = json.loads(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
            except ValueError:
                return None
            return payload if payload.get("exp", 0) > time.time() else None
        return None

    @staticmethod
    def secure(environ: dict[str, Any]) -> bool:
        return environ.get("wsgi.url_scheme") == "https" or environ.get("HTTP_X_FORWARDED_PROTO") == "https"

    # Pages

    def home(self, environ: dict[str, Any], user: dict[str, Any] | None, _query: dict[str, list[str]]) -> Answer:
        flags = self.settings.flags()
        links = ['<li><a href="/login">Sign in</a></li>', '<li><a href="/members">Members</a></li>']
        if flags.get("stale_preview_links"):
            links += ['<li><a href="%s/pricing">Pricing</a></li>' % PREVIEW_URL, '<li><a href="%s/docs/getting-started">Getting started</a></li>' % PREVIEW_URL]
        else:
            links += ['<li><a href="/pricing">Pricing</a></li>']
        # The mixed content: an image written with an absolute http:// URL to the site itself.
        host = html.escape(environ.get("HTTP_HOST") or "localhost", quote=True)
        banner = '<img src="http://%s/static/logo.svg" alt="" width="64" height="64">' % host if flags.get("mixed_content") else ""
        who = "<p>Signed in as %s.</p>" % html.escape(user["email"]) if user else ""
        body = "%s<h1>Launch demo community</h1>%s<p>Members, payments and support in one place.</p><ul>%s</ul>" % (banner, who, "".join(links))
        headers = [("Cache-Control", "private, no-store")] if user else []
        return Answer(200, _page("Launch demo", body), headers=headers)

    def login_form(self, _environ: dict[str, Any], _user: dict[str, Any] | None, query: dict[str, list[str]], error: str = "") -> Answer:
        target = html.escape((query.get("next") or ["/members"])[0], quote=True)
        message = '<p class="error">%s</p>' % html.escape(error) if error else ""
        body = ('<h1>Sign in</h1>%s<form method="post" action="/login"><input type="hidden" name="next" value="%s">'
                '<label>E-mail <input name="email" type="email"></label> <label>Password <input name="password" type="password"></label>'
                ' <button>Sign in</button></form>' % (message, target))
        return Answer(401 if error else 200, _page("Sign in", body), headers=[("Cache-Control", "no-store")])

    def login(self, environ: dict[str, Any]) -> Answer:
        form = parse_qs(_read_body(environ).decode("utf-8", "replace"))
        email = (form.get("email") or [""])[0].strip().lower()
        password = (form.get("password") or [""])[0]
        target = (form.get("next") or ["/members"])[0]
        if not target.startswith("/") or target.startswith("//"):
            target = "/members"
        if email != self.settings.admin_email or not hmac.compare_digest(password.encode("utf-8"), self.settings.admin_password.encode("utf-8")):
            return self.login_form(environ, None, {"next": [target]}, error="Wrong e-mail or password.")
        token = self.sign({"email": email, "admin": True, "exp": int(time.time()) + SESSION_SECONDS})
        cookie = "%s=%s; Path=/; HttpOnly; SameSite=Lax%s" % (SESSION_COOKIE, token, "; Secure" if self.secure(environ) else "")
        return Answer(303, b"", headers=[("Location", target), ("Set-Cookie", cookie), ("Cache-Control", "no-store")])

    def logout(self, environ: dict[str, Any], _user: dict[str, Any] | None, _query: dict[str, list[str]]) -> Answer:
        cookie = "%s=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax%s" % (SESSION_COOKIE, "; Secure" if self.secure(environ) else "")
        return Answer(303, b"", headers=[("Location", "/"), ("Set-Cookie", cookie), ("Cache-Control", "no-store")])

    def signed_in_page(self, environ: dict[str, Any], path: str, user: dict[str, Any] | None, query: dict[str, list[str]]) -> Answer:
        if user is None:
            asked = path + ("?" + environ["QUERY_STRING"] if environ.get("QUERY_STRING") else "")
            return Answer(303, b"", headers=[("Location", "/login?next=" + quote(asked)), ("Cache-Control", "no-store")])
        private = [("Cache-Control", "private, no-store")]
        if path == "/members":
            term = (query.get("q") or [""])[0]
            self.slow_down()
            rows = "".join('<tr><td><a href="/members/%d">%s</a></td><td>%s</td><td>%s</td><td class="status-%s">%s</td></tr>'
                           % (member.id, html.escape(member.name), html.escape(member.email), member.plan, member.status, member.status)
                           for member in members.search(term))
            body = ('<h1>Members</h1><form class="inline"><input name="q" value="%s"><button>Search</button></form>'
                    "<table><tr><th>Name</th><th>E-mail</th><th>Plan</th><th>Status</th></tr>%s</table>" % (html.escape(term, quote=True), rows))
            return Answer(200, _page("Members", body), headers=private)
        if path.startswith("/members/"):
            member = members.BY_ID.get(int(path.rsplit("/", 1)[1])) if path.rsplit("/", 1)[1].isdigit() else None
            if member is None:
                return Answer(404, _page("Not found", "<p>No such member.</p>"), headers=private)
            items = "".join("<dt>%s</dt><dd>%s</dd>" % (key.replace("_", " "), html.escape(str(value))) for key, value in member.as_dict().items())
            return Answer(200, _page(member.name, "<h1>%s</h1><dl>%s</dl>" % (html.escape(member.name), items)), headers=private)
        if not user.get("admin"):
            return Answer(403, _page("Forbidden", "<p>Admins only.</p>"), headers=private)
        if path == "/admin":
            counts: dict[str, int] = {}
            for member in members.MEMBERS:
                counts[member.status] = counts.get(member.status, 0) + 1
            items = "".join("<li>%s: %d</li>" % (status, count) for status, count in sorted(counts.items()))
            return Answer(200, _page("Admin", '<h1>Admin</h1><ul>%s</ul><p><a href="/admin/payments">Payments</a></p>' % items), headers=private)
        if path == "/admin/payments":
            with self.lock:
                events = list(self.webhooks)
            rows = "".join("<tr><td>%s</td><td>%s</td><td>%s</td></tr>" % (html.escape(str(event.get("id"))), html.escape(str(event.get("type"))),
                                                                           html.escape(str(event.get("received_at")))) for event in events)
            late = [member for member in members.MEMBERS if member.status == "past_due"]
            body = ("<h1>Payments</h1><p>%d members are past due.</p><h2>Webhooks received</h2>"
                    "<table><tr><th>Event</th><th>Type</th><th>Received</th></tr>%s</table>" % (len(late), rows))
            return Answer(200, _page("Payments", body), headers=private)
        return Answer(404, _page("Not found", "<p>There is no page here.</p>"), headers=private)

    def slow_down(self) -> None:
        delay = int(self.settings.flags().get("slow_ms") or 0)
        if delay > 0:
            time.sleep(delay / 1000.0)

    # API, webhooks, health

    def api_members(self, environ: dict[str, Any], user: dict[str, Any] | None, query: dict[str, list[str]]) -> Answer:
        bearer = environ.get("HTTP_AUTHORIZATION", "")
        token_ok = bool(self.settings.api_token) and hmac.compare_digest(bearer.encode("utf-8"), ("Bearer " + self.settings.api_token).encode("utf-8"))
        private = [("Cache-Control", "private, no-store")]
        if user is None and not token_ok:
            return _json(401, {"error": "authentication required"}, [*private, ("WWW-Authenticate", 'Bearer realm="members"')])
        self.slow_down()
        found = members.search((query.get("q") or [""])[0])
        return _json(200, {"count": len(found), "members": [member.as_dict() for member in found]}, private)

    def webhook(self, environ: dict[str, Any]) -> Answer:
        if not self.settings.webhook_secret:
            return _json(503, {"error": "the webhook secret is not configured"})
        body = _read_body(environ)
        expected = "sha256=" + hmac.new(self.settings.webhook_secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(environ.get("HTTP_X_SIGNATURE", "").encode("utf-8"), expected.encode("utf-8")):
            return _json(401, {"error": "bad signature"})
        try:
            event = json.loads(body)
        except ValueError:
            return _json(400, {"error": "the body is not JSON"})
        if not isinstance(event, dict) or "id" not in event or "type" not in event:
            return _json(400, {"error": "an event needs an id and a type"})
        event["received_at"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        with self.lock:
            self.webhooks.appendleft(event)
        return _json(200, {"received": True, "id": event["id"]})

    def healthz(self, _environ: dict[str, Any], _user: dict[str, Any] | None, _query: dict[str, list[str]]) -> Answer:
        return _json(200, {"status": "ok", "version": __version__, "release": self.settings.release, "started_at": STARTED_AT, "pid": os.getpid()},
                     [("Cache-Control", "no-store")])

    @staticmethod
    def static(name: str) -> Answer:
        path = (STATIC / name).resolve()
        if STATIC not in path.parents or not path.is_file():
            return Answer(404, _page("Not found", "<p>There is no file here.</p>"))
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return Answer(200, path.read_bytes(), kind, [("Cache-Control", "public, max-age=86400")])


def _read_body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return environ["wsgi.input"].read(length) if length > 0 else b""


def _page(title: str, body: str) -> str:
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>%s</title>'
            '<link rel="stylesheet" href="/static/app.css"><script src="/static/app.js" defer></script></head>'
            '<body><header><img src="/static/logo.svg" alt="" width="24" height="24"><a href="/">Launch demo</a>'
            '<a href="/members">Members</a><a href="/admin">Admin</a></header><main>%s</main></body></html>' % (html.escape(title), body))
