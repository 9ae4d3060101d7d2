# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The demo origin: a small membership admin app (a plain WSGI application, standard library only).

Run it with any WSGI server, e.g. ``gunicorn -c gunicorn.conf.py origin_app.wsgi:application`` from
the folder that holds ``origin_app/``. Its whole configuration comes from the environment (the
``.env`` a deploy renders):

- ``APP_RELEASE``: the release id shown by ``/healthz`` (default: the version in ``VERSION``);
- ``SECRET_KEY``: signs session cookies (a fixed development key, with a warning, when unset);
- ``WEBHOOK_SECRET``: HMAC-SHA256 key of ``POST /webhooks/payments`` (the receiver answers 503 without it);
- ``ADMIN_EMAIL`` / ``ADMIN_PASSWORD``: the one admin account (lab defaults: ``admin@launch-demo.test`` /
  ``lab-demo-password``, fake); ``API_TOKEN``: a Bearer token accepted by ``/api/members``;
- ``ORIGIN_FLAGS_FILE``: a JSON file read on each request, ``{"stale_preview_links": true,
  "mixed_content": true, "slow_ms": 0}``: the launch problems the app shows (links to the old
  preview deployment, an ``http://`` image on the home page, a slower member search).
"""

from __future__ import annotations

from pathlib import Path

__version__ = (Path(__file__).resolve().parent / "VERSION").read_text(encoding="utf-8").strip()
