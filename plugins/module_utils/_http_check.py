# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The http_check task, shared by its module (on the host) and its action plugin (inside ansible-playbook for a local task)."""

from __future__ import annotations

import asyncio
import time

from ansible_collections.launchready.core.plugins.module_utils._findings import CAN_WAIT, FAIL_ON_CHOICES, MUST_DO_NOW, OK, failure, ranked, summarize
from ansible_collections.launchready.core.plugins.module_utils._http_expectations import (
    JMESPATH_IMPORT_ERROR,
    METHODS,
    Expectation,
    ExpectationError,
    Verdict,
    build_expectations,
    evaluate,
    result_entry,
)
from ansible_collections.launchready.core.plugins.module_utils._http_probe import (
    CRYPTOGRAPHY_IMPORT_ERROR,
    HTTPX_IMPORT_ERROR,
    TLS_VERSIONS,
    HttpProbe,
    ProbeConfigError,
    Resolve,
)

ARGUMENT_SPEC = dict(
    expectations=dict(
        type="list",
        elements="dict",
        required=True,
        options=dict(
            url=dict(type="str", required=True),
            method=dict(type="str", choices=list(METHODS), default="GET"),
            title=dict(type="str"),
            severity=dict(type="str", choices=[MUST_DO_NOW, CAN_WAIT], default=MUST_DO_NOW),
            status=dict(type="list", elements="int"),
            location=dict(type="str"),
            hops=dict(type="int"),
            headers=dict(
                type="dict",
                options=dict(
                    present=dict(type="list", elements="str"),
                    absent=dict(type="list", elements="str"),
                    match=dict(type="dict"),
                ),
            ),
            hsts=dict(
                type="dict",
                options=dict(
                    min_max_age=dict(type="int"),
                    include_subdomains=dict(type="bool"),
                    preload=dict(type="bool"),
                ),
            ),
            cache_status=dict(type="list", elements="str"),
            cache_status_not=dict(type="list", elements="str"),
            body_contains=dict(type="raw"),
            body_not_contains=dict(type="raw"),
            json=dict(type="dict"),
            tls=dict(
                type="dict",
                options=dict(
                    min_days_left=dict(type="int"),
                    verify_chain=dict(type="bool", default=True),
                    verify_hostname=dict(type="bool", default=True),
                    min_version=dict(type="str", choices=list(TLS_VERSIONS)),
                ),
            ),
            mixed_content=dict(type="bool", default=False),
            stale_links=dict(type="bool", default=False),
        ),
    ),
    stale_hosts=dict(type="list", elements="str", default=[]),
    resolve=dict(type="list", elements="raw", default=[]),
    ca_path=dict(type="path"),
    timeout=dict(type="float", default=10.0),
    retry_for=dict(type="float", default=0.0),
    retry_interval=dict(type="float", default=0.25),
    concurrency=dict(type="int", default=20),
    max_redirects=dict(type="int", default=10),
    stage=dict(type="str", default="http_check"),
    fail_on=dict(type="str", choices=list(FAIL_ON_CHOICES), default="never"),
)


class HttpCheckError(Exception):
    """A bad option: the task fails before any request."""


def missing_libraries(params: dict) -> list[tuple[str, str]]:
    """The libraries these expectations need that cannot be imported, with their import tracebacks."""
    expectations = params["expectations"]
    needed = [
        ("httpx", HTTPX_IMPORT_ERROR, True),
        ("cryptography", CRYPTOGRAPHY_IMPORT_ERROR, any(item["url"].strip().lower().startswith("https:") for item in expectations)),
        ("jmespath", JMESPATH_IMPORT_ERROR, any(item["json"] for item in expectations)),
    ]
    return [(library, error) for library, error, used in needed if error and used]


async def judge(probe: HttpProbe, expectations: list[Expectation], params: dict) -> list[Verdict]:
    """Probe every expectation's URL concurrently (the probe bounds how many at once), then judge each."""
    results = await asyncio.gather(*(probe.probe(exp.url, exp.method, exp.tls.versions_to_refuse if exp.tls else ()) for exp in expectations))
    return [evaluate(exp, result, params["stage"], tuple(params["stale_hosts"])) for exp, result in zip(expectations, results, strict=True)]


async def check(expectations: list[Expectation], resolve: Resolve, params: dict) -> tuple[list[Verdict], int]:
    """Judge every expectation, then ask again those that do not hold until they do or retry_for runs out; also return the rounds made."""
    probe = HttpProbe(
        resolve=resolve,
        ca_path=params["ca_path"],
        timeout=params["timeout"],
        concurrency=params["concurrency"],
        max_redirects=params["max_redirects"],
    )
    deadline = time.monotonic() + params["retry_for"]
    async with probe:
        verdicts = await judge(probe, expectations, params)
        rounds = 1
        pending = [index for index, verdict in enumerate(verdicts) if verdict.finding.severity != OK]
        while pending and time.monotonic() + params["retry_interval"] < deadline:
            await asyncio.sleep(params["retry_interval"])
            for index, verdict in zip(pending, await judge(probe, [expectations[index] for index in pending], params), strict=True):
                verdicts[index] = verdict
            rounds += 1
            pending = [index for index in pending if verdicts[index].finding.severity != OK]
    return verdicts, rounds


def run(params: dict) -> tuple[dict, str | None]:
    """Check every expectation; return the task's result and, when fail_on says so, why the task fails."""
    if params["timeout"] <= 0:
        raise HttpCheckError("timeout must be more than 0 seconds")
    if params["retry_for"] < 0 or params["retry_interval"] <= 0:
        raise HttpCheckError("retry_for must be 0 or more seconds and retry_interval more than 0")
    try:
        expectations = build_expectations(params["expectations"])
        resolve = Resolve.parse(params["resolve"])
        verdicts, rounds = asyncio.run(check(expectations, resolve, params))
    except (ExpectationError, ProbeConfigError) as exc:
        raise HttpCheckError(str(exc)) from None
    findings = [verdict.finding for verdict in verdicts]
    result = dict(
        changed=False,
        findings=ranked(findings),
        summary=summarize(findings),
        checked=len(expectations),
        rounds=rounds,
        results=[result_entry(verdict) for verdict in verdicts],
    )
    return result, failure(findings, params["fail_on"], "HTTP")
