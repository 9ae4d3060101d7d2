# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab: the outside world of a launch, on loopback.

One process serves a Cloudflare API v4 emulator (plus its control API) over HTTP, the emulator's
zones over authoritative DNS (UDP and TCP), an edge (HTTP and HTTPS) applying the zones' settings
and rules in front of the origin, and the origin itself (the demo app under gunicorn). Start it
with ``python -m tests.lab up`` from the repository root, or from Python with
``tests.lab.client.Lab.start(state_dir)``.
See tests/lab/README.md.
"""
