# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""gunicorn settings for the demo origin: threaded workers (keep-alive), quick graceful stops.

``gunicorn -c origin_app/gunicorn.conf.py origin_app.wsgi:application``; ``kill -HUP <master>``
reloads the workers gracefully. Every value can be overridden on the command line.
"""

from __future__ import annotations

import os

bind = [os.environ.get("ORIGIN_BIND", "127.0.0.1:8000")]
worker_class = "gthread"
workers = int(os.environ.get("ORIGIN_WORKERS", "2"))
threads = int(os.environ.get("ORIGIN_THREADS", "8"))
keepalive = 30
graceful_timeout = 5
timeout = 30
accesslog = os.environ.get("ORIGIN_ACCESS_LOG", "-")
errorlog = os.environ.get("ORIGIN_ERROR_LOG", "-")
