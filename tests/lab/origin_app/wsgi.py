# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The WSGI entry point: ``gunicorn origin_app.wsgi:application``."""

from __future__ import annotations

from .app import App

application = App()
