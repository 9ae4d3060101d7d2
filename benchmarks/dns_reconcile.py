# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How many API calls, seconds and megabytes a whole-zone DNS change costs, against the lab.

(a) launchready.core.cloudflare_dns_records, one task for the whole zone;
(b) community.general.cloudflare_dns looped over the same records (the peer).

The peer comes from the `ansible` package on PyPI, installed into benchmarks/.venv-bench (created
here, never committed). Its module hard-codes the public API URL, so it runs from a temporary copy
with only that URL replaced. Run from the repository root: `.venv/bin/python -m benchmarks.dns_reconcile`.
Prints one line per scenario, then `RESULT ...` as the last line.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import subprocess
import sys
import tempfile

from tests.lab.client import Lab

ROOT = pathlib.Path(__file__).resolve().parent.parent
PEER_VENV = ROOT / "benchmarks" / ".venv-bench"
PEER_PACKAGE = "ansible==12.3.0"
PEER_MODULE = "ansible_collections/community/general/plugins/modules/cloudflare_dns.py"
PUBLIC_API = "https://api.cloudflare.com/client/v4"
BATCH_LIMIT_FREE_PLAN = 200
LIST_PAGE_SIZE = 5000000

OURS = """
- name: Reconcile the zone in one task
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Declare every record
      launchready.core.cloudflare_dns_records:
        zone: "{{ zone }}"
        records: "{{ records }}"
        api_token: "{{ token }}"
        api_base_url: "{{ api_base_url }}"
"""

PEER = """
- name: Reconcile the zone one record at a time
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Declare each record
      bench_cloudflare_dns:
        zone: "{{ zone }}"
        record: "{{ item.name }}"
        type: "{{ item.type }}"
        value: "{{ item.content }}"
        ttl: "{{ item.ttl }}"
        priority: "{{ item.priority | default(omit) }}"
        proxied: "{{ item.proxied | default(omit) }}"
        # Replace the set's other values, as a declarative run does; without it a changed value is added beside the old one.
        solo: true
        api_token: "{{ token }}"
      loop: "{{ records }}"
      loop_control:
        label: "{{ item.type }} {{ item.name }}"
"""


def zone_records(zone: str, count: int, changed_every: int = 0) -> list[dict]:
    """`count` records of the kinds a launch zone holds; every `changed_every`-th one gets a new value."""
    records = []
    for index in range(count):
        changed = bool(changed_every) and index % changed_every == 0
        kind = index % 5
        name = "host%04d.%s" % (index, zone)
        if kind == 0:
            record = {"type": "A", "name": name, "content": "192.0.2.%d" % (index % 250 + (3 if changed else 1)), "ttl": 1, "proxied": True}
        elif kind == 1:
            record = {"type": "AAAA", "name": name, "content": "2001:db8::%x" % (index + (0x1000 if changed else 0)), "ttl": 300}
        elif kind == 2:
            record = {"type": "CNAME", "name": name, "content": ("new" if changed else "origin") + ".example.net", "ttl": 300}
        elif kind == 3:
            record = {"type": "TXT", "name": name, "content": "site-verification=%08d%s" % (index, "-v2" if changed else ""), "ttl": 300}
        else:
            record = {"type": "MX", "name": name, "content": "mx%d.example.net" % (2 if changed else 1), "priority": 10, "ttl": 300}
        records.append(record)
    return records


def ensure_peer() -> pathlib.Path:
    """The peer's venv (made once) and a library folder holding its module pointed at the lab."""
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", PEER_PACKAGE], check=True)
    return python


def peer_library(peer_python: pathlib.Path, api_base_url: str, into: pathlib.Path) -> pathlib.Path:
    site = subprocess.run([str(peer_python), "-c", "import ansible_collections, os; print(os.path.dirname(ansible_collections.__path__[0]))"],
                          check=True, capture_output=True, text=True).stdout.strip()
    source = (pathlib.Path(site) / PEER_MODULE).read_text(encoding="utf-8")
    if source.count(PUBLIC_API) != 1:
        raise SystemExit("the peer module no longer holds exactly one %s; update benchmarks/dns_reconcile.py" % PUBLIC_API)
    library = into / "library"
    library.mkdir()
    (library / "bench_cloudflare_dns.py").write_text(source.replace(PUBLIC_API, api_base_url), encoding="utf-8")
    return library


def run(python: pathlib.Path, playbook: str, extra: dict, workdir: pathlib.Path, library: pathlib.Path | None = None) -> tuple[float, float]:
    """Run one playbook; return (wall seconds, peak resident MB of the largest process it started)."""
    (workdir / "playbook.yml").write_text(playbook, encoding="utf-8")
    (workdir / "vars.json").write_text(json.dumps(extra), encoding="utf-8")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"), ANSIBLE_PYTHON_INTERPRETER=str(python),
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    if library:
        env["ANSIBLE_LIBRARY"] = str(library)
    measure = ("import resource, subprocess, sys, time; start = time.monotonic(); "
               "code = subprocess.run(sys.argv[1:]).returncode; wall = time.monotonic() - start; "
               "print(wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024); sys.exit(code)")
    command = [str(python), "-c", measure, str(python.parent / "ansible-playbook"), "playbook.yml", "-e", "@vars.json"]
    done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit("benchmark run failed:\n%s\n%s" % (done.stdout[-3000:], done.stderr[-3000:]))
    wall, peak_mb = done.stdout.strip().splitlines()[-1].split()
    return float(wall), float(peak_mb)


def scenario(lab: Lab, label: str, python: pathlib.Path, playbook: str, extra: dict, workdir: pathlib.Path, library=None) -> dict:
    lab.reset_calls()
    wall, peak_mb = run(python, playbook, extra, workdir, library)
    calls = lab.calls()["total"]
    print("%-34s calls=%-5d wall_s=%-8.2f peak_mb=%.0f" % (label, calls, wall, peak_mb), flush=True)
    return {"calls": calls, "wall": wall, "peak_mb": peak_mb}


def check_zone(lab: Lab, zone: str, expected: list[dict]) -> None:
    """The benchmark only counts runs that leave the zone exactly as declared (TXT compared unquoted)."""
    got = sorted((r["type"], r["name"], r["content"].strip('"') if r["type"] == "TXT" else r["content"])
                 for r in lab.records(zone) if r["type"] not in ("NS", "SOA"))
    want = sorted((r["type"], r["name"], r["content"]) for r in expected)
    if got != want:
        raise SystemExit("%s does not hold the declared records: %d held that were not declared, first %s; %d declared that are not held, first %s" % (
            zone, len(set(got) - set(want)), sorted(set(got) - set(want))[:1], len(set(want) - set(got)), sorted(set(want) - set(got))[:1]))


def main() -> None:
    peer_python = ensure_peer()
    ours_python = pathlib.Path(sys.executable)
    with tempfile.TemporaryDirectory(prefix="lr-bench-") as tmp:
        tmpdir = pathlib.Path(tmp)
        lab = Lab.start(tmpdir / "lab")
        try:
            token = lab.add_token(["zone:read", "dns_records:read", "dns_records:edit"])
            library = peer_library(peer_python, lab.api_base_url, tmpdir)
            results = {}
            for who, python, playbook, lib in (("ours", ours_python, OURS, None), ("peer", peer_python, PEER, library)):
                zone = "%s-200.bench.test" % who
                lab.add_zone(zone)
                base = {"zone": zone, "token": token, "api_base_url": lab.api_base_url}
                records = zone_records(zone, 200)
                changed = zone_records(zone, 200, changed_every=10)
                results[who] = {
                    "from_empty": scenario(lab, "%s 200 from empty" % who, python, playbook, dict(base, records=records), tmpdir, lib),
                    "noop": scenario(lab, "%s 200 no-op" % who, python, playbook, dict(base, records=records), tmpdir, lib),
                    "changed": scenario(lab, "%s 200 with 10%% changed" % who, python, playbook, dict(base, records=changed), tmpdir, lib),
                }
                check_zone(lab, zone, changed)

            zone = "ours-3500.bench.test"
            lab.add_zone(zone)
            big = zone_records(zone, 3500)
            large = scenario(lab, "ours 3500 from empty", ours_python, OURS, {"zone": zone, "token": token, "api_base_url": lab.api_base_url,
                                                                              "records": big}, tmpdir)
            check_zone(lab, zone, big)
            budget = math.ceil(3500 / BATCH_LIMIT_FREE_PLAN) + math.ceil(3500 / LIST_PAGE_SIZE) + 2
            print("3500-record zone: %d calls (budget %d), peak %.0f MB (budget 300)" % (large["calls"], budget, large["peak_mb"]))
        finally:
            lab.stop()

    ours, peer = results["ours"], results["peer"]
    print("RESULT calls_from_empty=%d calls_noop=%d speedup_from_empty=%.1f speedup_noop=%.1f calls_3500=%d" % (
        ours["from_empty"]["calls"], ours["noop"]["calls"],
        peer["from_empty"]["wall"] / ours["from_empty"]["wall"], peer["noop"]["wall"] / ours["noop"]["wall"], large["calls"]))


if __name__ == "__main__":
    main()
