# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How long checking 200 URLs at the lab edge takes, with the same assertions on each.

(a) launchready.core.http_check: one task for all 200 expectations (concurrent requests);
(b) ansible.builtin.uri (the peer) looped over the same 200 URLs, one module run per URL.

Each expectation: the URL answers 200, and its ``cf-cache-status`` is not ``HIT`` (the "never cache
admin pages" check). For the peer: ``status`` and the header in ``failed_when``.

Both run through ansible-playbook on this checkout (tests/e2e/playbook.py), against a lab started
here, and send the same 200 requests to the edge over plain HTTP with the real ``Host`` header:
http_check maps every name to the edge with ``resolve``; the peer asks ``http://127.0.0.1:<port>``
with a ``Host`` header, because urllib (which uri uses) cannot connect to one address while keeping
another name for TLS without changing the system's resolver. A third line shows http_check on the
same 200 URLs over HTTPS, where it also verifies each host's certificate (informative; not compared).

Each playbook first runs once on one URL (untimed), so that neither pays for a cold start. The
edge's log must show exactly 200 requests per timed run, and both must pass every assertion, or the
benchmark fails. Run from the repository root: ``.venv/bin/python -m benchmarks.http_check [--rounds N]``.
Prints one line per scenario (best wall seconds of the rounds), then ``RESULT ...`` as the last line.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from tests.e2e.playbook import Result, run_playbook
from tests.lab.client import Lab

COUNT = 200
HOSTS = ("www", "app", "api", "admin", "members")
PATHS = ("/", "/login", "/healthz", "/api/health")
ZONE = "bench-http.test"

OURS = """
- name: Check every URL in one task
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Check every URL
      launchready.core.http_check:
        expectations: "{{ expectations }}"
        resolve: "{{ resolve }}"
        ca_path: "{{ ca_path }}"
        fail_on: must_do_now
"""

PEER = """
- name: Check the URLs one at a time
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Check each URL
      ansible.builtin.uri:
        url: "{{ item.address_url }}"
        headers:
          Host: "{{ item.host }}"
        follow_redirects: none
        status_code: 200
      register: answer
      failed_when: answer.status != 200 or (answer.cf_cache_status | default('')) == 'HIT'
      loop: "{{ checks }}"
      loop_control:
        label: "{{ item.host }}{{ item.path }}"
"""


def targets() -> list[dict]:
    """200 distinct URLs over five proxied names and four dynamic paths (none cacheable by default)."""
    found = []
    for index in range(COUNT):
        host = "%s.%s" % (HOSTS[index % len(HOSTS)], ZONE)
        path = "%s?n=%d" % (PATHS[(index // len(HOSTS)) % len(PATHS)], index)
        found.append({"host": host, "path": path})
    return found


def timed(lab: Lab, label: str, playbook: str, extra: dict, rounds: int) -> tuple[float, Result]:
    """Best wall time of ``rounds`` runs; each must succeed and reach the edge exactly COUNT times."""
    best, last = float("inf"), None
    for _round in range(rounds):
        lab.clear_edge_log()
        started = time.monotonic()
        last = run_playbook(playbook, extra)
        wall = time.monotonic() - started
        if last.rc != 0:
            raise SystemExit("%s failed:\n%s" % (label, last.output[-3000:]))
        requests = len(lab.edge_log())
        if requests != COUNT:
            raise SystemExit("%s sent %d requests to the edge, not %d" % (label, requests, COUNT))
        best = min(best, wall)
    assert last is not None
    print("%-44s expectations=%d wall_s=%.2f per_url_ms=%.1f" % (label, COUNT, best, best * 1000 / COUNT), flush=True)
    return best, last


def main() -> None:
    parser = argparse.ArgumentParser(description="Time http_check against ansible.builtin.uri on 200 URLs at the lab edge.")
    parser.add_argument("--rounds", type=int, default=1, help="runs per scenario; the best wall time counts (default 1)")
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory(prefix="lr-bench-http-") as tmp:
        lab = Lab.start(tmp)
        try:
            lab.add_zone(ZONE)
            lab.seed_records(ZONE, [{"type": "A", "name": host, "content": "127.0.0.1", "proxied": True, "ttl": 1} for host in HOSTS])
            checks = targets()
            edge = "127.0.0.1:%d" % lab.edge_http_port
            expectations = [{"url": "http://%s%s" % (c["host"], c["path"]), "status": 200, "cache_status_not": ["HIT"]} for c in checks]
            ours_extra = {"expectations": expectations, "resolve": ["*:80:%s" % edge, "*:443:127.0.0.1:%d" % lab.edge_https_port],
                          "ca_path": str(lab.edge_ca_file)}
            peer_extra = {"checks": [dict(c, address_url="http://%s%s" % (edge, c["path"])) for c in checks]}

            # A first run of each playbook, on one URL, pays for what is done once per machine (byte-compiling, caches).
            for playbook, warm_up in ((OURS, dict(ours_extra, expectations=expectations[:1])), (PEER, {"checks": peer_extra["checks"][:1]})):
                if run_playbook(playbook, warm_up).rc != 0:
                    raise SystemExit("the warm-up run failed")
            ours, result = timed(lab, "ours: http_check, one task (http)", OURS, ours_extra, rounds)
            summary = result.task("Check every URL")["summary"]
            if summary != {"must_do_now": 0, "can_wait": 0, "ok": COUNT}:
                raise SystemExit("http_check did not pass every expectation: %s" % summary)
            peer, result = timed(lab, "peer: ansible.builtin.uri, looped (http)", PEER, peer_extra, rounds)
            if result.recap.get("ok") != 1 or result.recap.get("failed"):
                raise SystemExit("the uri loop did not pass every check: %s" % result.recap)
            secure = [dict(expectation, url=expectation["url"].replace("http://", "https://", 1)) for expectation in expectations]
            timed(lab, "ours: http_check, one task (https, TLS checked)", OURS, dict(ours_extra, expectations=secure), rounds)
        finally:
            lab.stop()
    print("RESULT expectations=%d speedup=%.1f" % (COUNT, peer / ours))


if __name__ == "__main__":
    main()
