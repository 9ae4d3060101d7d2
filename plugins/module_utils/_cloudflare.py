# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one Cloudflare API v4 client every Cloudflare module of the collection uses.

It sends the API token as a Bearer token, unwraps the envelope (``success``, ``errors``,
``messages``, ``result``, ``result_info``), lists every page of a collection, retries what
can be retried (HTTP 429 after ``Retry-After``, HTTP 5xx and connection failures after an
exponential backoff), counts the calls it makes, and turns every failure into one
exception, ``CloudflareError``, whose text never contains the token.

Unit tests fake only the HTTP layer: set ``CloudflareClient.transport`` to an
``httpx.MockTransport`` (and ``CloudflareClient.sleep`` to a recorder).
"""

from __future__ import annotations

import email.utils
import math
import re
import time
import traceback
from datetime import datetime, timezone

from ansible.module_utils.basic import env_fallback, missing_required_lib

from ansible_collections.launchready.core.plugins.module_utils._redact import scrub

try:
    import httpx
except ImportError:
    httpx = None  # type: ignore[assignment]
    HTTPX_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    HTTPX_IMPORT_ERROR = None

DEFAULT_API_BASE_URL = "https://api.cloudflare.com/client/v4"
RETRY_AFTER_MAX = 60.0
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0
# The largest page each list endpoint documents (Cloudflare API reference, "per_page"):
# List Zones allows 5..50, List DNS Records 1..5,000,000.
PER_PAGE_ZONES = 50
PER_PAGE_DNS_RECORDS = 5000000
USER_AGENT = "launchready.core (Ansible collection)"

_ZONE_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_BATCH_POINTER_RE = re.compile(r"(deletes|patches|puts|posts)(?:/|\[|\.)(\d+)")
# Zone-level codes Cloudflare answers when a zone id is unknown or not visible to the token.
_ZONE_NOT_FOUND_CODES = {1001, 1003, 7003, 7000}


def cloudflare_argument_spec() -> dict:
    """The options of the ``launchready.core.cloudflare`` documentation fragment."""
    return dict(
        api_token=dict(type="str", required=True, no_log=True, fallback=(env_fallback, ["CLOUDFLARE_API_TOKEN"])),
        api_base_url=dict(type="str", default=DEFAULT_API_BASE_URL),
        timeout=dict(type="float", default=30),
        retries=dict(type="int", default=5),
    )


def is_zone_id(zone: str) -> bool:
    return bool(_ZONE_ID_RE.match(zone.strip().lower()))


def zone_plan(zone: dict) -> str:
    """The plan a zone object is on, as one lowercase word: free, pro, business, enterprise, ..."""
    plan = zone.get("plan") or {}
    word = plan.get("legacy_id") or (plan.get("name") or "").split(" ")[0]
    return str(word).lower() or "unknown"


class CloudflareError(Exception):
    """A call the Cloudflare API refused or never answered.

    ``status`` is the HTTP status (``None`` without an answer); ``errors`` the envelope's
    errors as ``{"code", "message"}`` (plus ``pointer`` when the API says which part of the
    request caused it). The message names the call and never contains the API token.
    """

    def __init__(self, message: str, status: int | None = None, errors: list | None = None, method: str | None = None, path: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.errors = errors or []
        self.method = method
        self.path = path

    def __str__(self) -> str:
        return self.message

    @property
    def codes(self) -> list[int]:
        return [error["code"] for error in self.errors if error.get("code") is not None]

    def batch_pointers(self) -> list[tuple[str, int]]:
        """For a batch call: which changes (``("posts", 3)``) the errors point at."""
        found = []
        for error in self.errors:
            for text in (error.get("pointer") or "", error.get("message") or ""):
                match = _BATCH_POINTER_RE.search(text)
                if match:
                    found.append((match.group(1), int(match.group(2))))
                    break
        return found

    def as_result(self) -> dict:
        """What a module adds to its failure result."""
        return {"status": self.status, "error_codes": self.codes, "errors": [dict(error) for error in self.errors]}


class CloudflareClient:
    """A Cloudflare API v4 session: ``get``/``post``/``patch``/``put``/``delete`` return the
    unwrapped ``result``; ``request`` returns the whole envelope; ``paginate`` every page.

    ``api_calls`` counts every HTTP request sent, retries included; ``pages`` counts the list
    pages fetched.
    """

    #: The httpx transport new clients use; ``None`` means the network.
    transport = None
    #: How the client waits between attempts.
    sleep = staticmethod(time.sleep)

    def __init__(self, api_token: str, api_base_url: str = DEFAULT_API_BASE_URL, timeout: float = 30, retries: int = 5, transport=None, sleep=None):
        if httpx is None:
            raise RuntimeError(missing_required_lib("httpx"))
        token = (api_token or "").strip()
        if not token:
            raise CloudflareError("api_token is empty: set it (from Ansible Vault) or the CLOUDFLARE_API_TOKEN environment variable")
        self._secrets = [token, api_token]
        self.retries = max(0, int(retries))
        self.api_calls = 0
        self.pages = 0
        self._sleep = sleep if sleep is not None else type(self).sleep
        self._http = httpx.Client(
            base_url=api_base_url.rstrip("/"),
            headers={"Authorization": "Bearer " + token, "Accept": "application/json", "User-Agent": USER_AGENT},
            timeout=timeout,
            transport=transport if transport is not None else type(self).transport,
        )

    @classmethod
    def from_module(cls, module) -> CloudflareClient:
        """A client from the options of ``cloudflare_argument_spec()``; fails the module without httpx."""
        if httpx is None:
            module.fail_json(msg=missing_required_lib("httpx"), exception=HTTPX_IMPORT_ERROR)
        params = module.params
        try:
            return cls(params["api_token"], params["api_base_url"], params["timeout"], params["retries"])
        except CloudflareError as exc:
            module.fail_json(msg=str(exc), api_calls=0)
            raise  # fail_json exits; this keeps type checkers and tests honest

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CloudflareClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def scrub(self, text: str) -> str:
        return scrub(text, self._secrets)

    # -- calls -----------------------------------------------------------------------------

    def request(self, method: str, path: str, params: dict | None = None, json=None) -> dict:
        """One API call (retried as needed); returns the envelope of a successful answer."""
        method = method.upper()
        attempt = 0
        while True:
            self.api_calls += 1
            try:
                response = self._http.request(method, path, params=params, json=json)
            except httpx.HTTPError as exc:
                if attempt < self.retries and _may_retry(method, exc):
                    self._sleep(_backoff(attempt))
                    attempt += 1
                    continue
                raise self._no_answer(method, path, exc, attempt) from None
            status = response.status_code
            if attempt < self.retries and (status == 429 or status >= 500):
                delay = _retry_after(response) if status == 429 else None
                self._sleep(_backoff(attempt) if delay is None else delay)
                attempt += 1
                continue
            return self._unwrap(method, path, response, attempt)

    def get(self, path: str, params: dict | None = None):
        return self.request("GET", path, params=params).get("result")

    def post(self, path: str, json=None):
        return self.request("POST", path, json=json).get("result")

    def patch(self, path: str, json=None):
        return self.request("PATCH", path, json=json).get("result")

    def put(self, path: str, json=None):
        return self.request("PUT", path, json=json).get("result")

    def delete(self, path: str):
        return self.request("DELETE", path).get("result")

    def paginate(self, path: str, params: dict | None = None, per_page: int = 50) -> list:
        """Every item of a paginated list, ``per_page`` at a time (use the endpoint's maximum)."""
        items: list = []
        page = 1
        while True:
            body = self.request("GET", path, params=dict(params or {}, page=page, per_page=per_page))
            self.pages += 1
            result = body.get("result")
            if result is None:
                result = []
            if not isinstance(result, list):
                raise CloudflareError("GET %s: the API answered a %s where a list was expected" % (path, type(result).__name__), method="GET", path=path)
            items.extend(result)
            info = body.get("result_info") or {}
            total_pages = info.get("total_pages")
            if total_pages is None and info.get("total_count") is not None and info.get("per_page"):
                total_pages = math.ceil(info["total_count"] / info["per_page"])
            if not result or (total_pages is not None and page >= total_pages) or (total_pages is None and len(result) < per_page):
                return items
            page += 1

    # -- zones and DNS records -------------------------------------------------------------

    def zone(self, zone: str) -> dict:
        """``zone`` as a name or a 32-hex id -> ``{"id", "name", "plan"}`` (plan: free, pro, ...)."""
        ref = zone.strip().lower().rstrip(".")
        if is_zone_id(ref):
            try:
                found = self.get("/zones/%s" % ref)
            except CloudflareError as exc:
                if exc.status == 404 or (exc.status in (400, 403) and set(exc.codes) & _ZONE_NOT_FOUND_CODES):
                    raise CloudflareError(
                        "zone id %s not found: it does not exist, or the API token cannot see it (%s)" % (ref, exc),
                        exc.status, exc.errors, exc.method, exc.path,
                    ) from None
                raise
        else:
            matches = [z for z in self.paginate("/zones", {"name": ref}, PER_PAGE_ZONES) if str(z.get("name", "")).lower() == ref]
            if not matches:
                raise CloudflareError("zone %s not found: it is not in the account, or the API token cannot see it (it needs Zone:Read on it)" % ref)
            if len(matches) > 1:
                raise CloudflareError("%d zones are named %s (ids %s): give the zone id instead" % (len(matches), ref, ", ".join(z["id"] for z in matches)))
            found = matches[0]
        return {"id": found["id"], "name": str(found["name"]).lower(), "plan": zone_plan(found)}

    def dns_records(self, zone_id: str) -> list[dict]:
        """Every DNS record of the zone."""
        return self.paginate("/zones/%s/dns_records" % zone_id, per_page=PER_PAGE_DNS_RECORDS)

    def dns_batch(self, zone_id: str, body: dict) -> dict:
        """One ``POST /zones/{zone_id}/dns_records/batch``: applied whole, or not at all."""
        return self.post("/zones/%s/dns_records/batch" % zone_id, json=body) or {}

    # -- zone settings, rulesets, Origin CA -----------------------------------------------

    def zone_settings(self, zone_id: str) -> list[dict]:
        """Every setting of the zone (``id``, ``value``, ``editable``, ``modified_on``)."""
        return self.get("/zones/%s/settings" % zone_id) or []

    def edit_zone_settings(self, zone_id: str, items: list[dict]) -> list[dict]:
        """One ``PATCH /zones/{zone_id}/settings`` of ``[{"id", "value"}, ...]``; answers the edited settings."""
        return self.patch("/zones/%s/settings" % zone_id, json={"items": items}) or []

    def entrypoint_ruleset(self, zone_id: str, phase: str) -> dict | None:
        """The zone's entry point ruleset of ``phase``, or ``None`` when the phase has none yet (HTTP 404)."""
        try:
            return self.get("/zones/%s/rulesets/phases/%s/entrypoint" % (zone_id, phase))
        except CloudflareError as exc:
            if exc.status == 404:
                return None
            raise

    def put_entrypoint_ruleset(self, zone_id: str, phase: str, body: dict) -> dict:
        """Replace (or create) the entry point ruleset of ``phase``; answers the new version."""
        return self.put("/zones/%s/rulesets/phases/%s/entrypoint" % (zone_id, phase), json=body) or {}

    def create_origin_certificate(self, body: dict) -> dict:
        """``POST /certificates``: an Origin CA certificate for a CSR (``csr``, ``hostnames``, ``requested_validity``, ``request_type``)."""
        return self.post("/certificates", json=body) or {}

    # -- answers ---------------------------------------------------------------------------

    def _unwrap(self, method: str, path: str, response, retried: int) -> dict:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise CloudflareError(
                self.scrub("%s %s: HTTP %d, and the answer is not a Cloudflare API envelope: %s" % (method, path, status, response.text[:200].strip())),
                status, [], method, path,
            )
        errors = [_error(item) for item in body.get("errors") or []]
        if response.is_success and body.get("success") is True:
            return body
        detail = "; ".join("%s %s" % (e["code"], e["message"]) if e.get("code") is not None else e["message"] for e in errors) or "no error details"
        message = "%s %s failed with HTTP %d: %s" % (method, path, status, detail)
        if status == 429:
            message += " (still rate limited after %d retries)" % retried
        elif status >= 500:
            message += " (still failing after %d retries)" % retried
        elif status in (401, 403):
            message += ". Check that api_token is valid, active, and has the permissions this task needs on the zone."
        return_errors = [{k: self.scrub(v) if isinstance(v, str) else v for k, v in e.items()} for e in errors]
        raise CloudflareError(self.scrub(message), status, return_errors, method, path)

    def _no_answer(self, method: str, path: str, exc: Exception, retried: int) -> CloudflareError:
        message = "%s %s: no answer from the Cloudflare API after %d attempt(s) (%s: %s)" % (method, path, retried + 1, type(exc).__name__, exc)
        if method in ("POST", "PATCH") and not isinstance(exc, _unsent_errors()):
            message += ". The change may or may not have been applied: run the task again, it reads the current state first."
        return CloudflareError(self.scrub(message), None, [], method, path)


def _error(item) -> dict:
    if not isinstance(item, dict):
        return {"code": None, "message": str(item)}
    error = {"code": item.get("code"), "message": str(item.get("message") or "")}
    pointer = (item.get("source") or {}).get("pointer") if isinstance(item.get("source"), dict) else None
    if pointer:
        error["pointer"] = pointer
    return error


def _unsent_errors() -> tuple:
    """Failures that happen before the request reaches the server."""
    return (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _may_retry(method: str, exc: Exception) -> bool:
    if isinstance(exc, _unsent_errors()):
        return True
    # POST and PATCH are not idempotent: after a timeout the server may have applied them.
    if method in ("POST", "PATCH"):
        return False
    return isinstance(exc, (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError))


def _backoff(attempt: int) -> float:
    return min(BACKOFF_FIRST * 2 ** attempt, BACKOFF_MAX)


def _retry_after(response) -> float | None:
    """``Retry-After`` in seconds (a number or an HTTP date), capped; ``None`` if absent or unreadable."""
    value = (response.headers.get("Retry-After") or "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_MAX)
