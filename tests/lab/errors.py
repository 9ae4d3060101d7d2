# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cloudflare's error envelope and the error codes the emulator answers with.

Cloudflare does not publish one table of its API error codes. The codes and messages below are
the ones its API has been seen to answer with, as quoted verbatim in public bug reports:

- 9106 "Missing X-Auth-Key, X-Auth-Email or Authorization headers" (HTTP 400):
  github.com/cloudflare/cloudflare-python/issues/2678, github.com/xiaotianxt/bypass-cloudflare-for-github-action/issues/2
- 6003 "Invalid request headers" with error_chain 6111 "Invalid format for Authorization header" (HTTP 400):
  github.com/jeessy2/ddns-go/issues/916, github.com/willswire/unifi-ddns/issues/78
- 9109 "Invalid access token" for an unknown token (HTTP 401 in the mock of github.com/favonia/cloudflare-ddns);
  9109 "Unauthorized to access requested resource" for a resource outside the token's reach (HTTP 403).
- 10000 "Authentication error" for a token without the permission a route needs (HTTP 403):
  github.com/cloudflare/terraform-provider-cloudflare/issues/1533
- 7003 "Could not route to ..., perhaps your object identifier is invalid?" + 7000 "No route for that URI" (HTTP 400):
  github.com/cloudflare/cloudflare-go/issues/118
- 6007 "Malformed JSON in request body": github.com/undefinedplayer/cloudflare-ddns/issues/10
- 9207 "Request body is invalid.": github.com/timothymiller/cloudflare-ddns/issues/206
- 9005 / 9006 "Content for A/AAAA record must be a valid IPv4/IPv6 address.":
  github.com/timothymiller/cloudflare-ddns/issues/230, github.com/wherelse/cloudflare-ddns-script/issues/15
- 1004 "DNS Validation Error" with error_chain 9021 "TTL must be between 60 and 86400 seconds, or 1 for Automatic.":
  github.com/timothymiller/cloudflare-ddns/issues/179
- 9041 "This DNS record cannot be proxied." (record type that cannot be proxied): github.com/jordantrizz/cloudflare-cli/issues/8
- 81044 "Record does not exist.": github.com/zanjie1999/cloudflare-api-v4-ddns/issues/5
- 81053 "An A, AAAA, or CNAME record with that host already exists." (adding a CNAME):
  github.com/cloudflare/terraform-provider-cloudflare/issues/1247
- 81054 "A CNAME record with that host already exists." (adding beside a CNAME): github.com/favonia/cloudflare-ddns/issues/990
- 81058 "An identical record already exists.": github.com/jeessy2/ddns-go/issues/1378
- 971 "Please wait and consider throttling your request speed" (HTTP 429, with Retry-After).
- 1006 "Unrecognized zone setting name: <id>" (HTTP 400): github.com/cloudflare/terraform-provider-cloudflare/issues/1810
  and /issues/1527 (the id after the colon), also quoted with HTTP 400 in public mocks of the settings API.
- 1007 "Invalid value for zone setting <id>": github.com/pulumi/pulumi-cloudflare/issues/1319
- 10003 "could not find entrypoint ruleset in the <phase> phase" (HTTP 404): github.com/ibm-mas/ansible-devops/pull/2403
- "Filter parsing error (<line>:<column>): ..." is the Rules language's own message (developers.cloudflare.com,
  Rules language > Expressions > Expression validation); the code the Rulesets API wraps it in is the lab's choice.
- 1012 "Please provide a zone id when requesting a stored certificate, or fetch by serial number"
  (GET /certificates without zone_id): github.com/zingz0r/CloudFlare.Client/pull/89
- 1016 "User is not authorized to perform this action" (Origin CA for a hostname outside the caller's zones):
  github.com/cloudflare/origin-ca-issuer/issues/65 and /issues/66

Where no public trace names a code (a batch over the plan's limit, an MX record without a
priority, an invalid record name, a server error), the lab uses the closest documented code and
says so next to it.
"""

from __future__ import annotations

from typing import Any

MISSING_AUTH = 9106
INVALID_HEADERS = 6003
INVALID_AUTHORIZATION_FORMAT = 6111
INVALID_TOKEN = 9109
UNAUTHORIZED_RESOURCE = 9109
AUTHENTICATION_ERROR = 10000
NO_ROUTE = 7000
COULD_NOT_ROUTE = 7003
MALFORMED_JSON = 6007
INVALID_BODY = 9207
DNS_VALIDATION = 1004
INVALID_NAME = 9000
INVALID_A_CONTENT = 9005
INVALID_AAAA_CONTENT = 9006
INVALID_CNAME_CONTENT = 9007
INVALID_MX_CONTENT = 9009
INVALID_TTL = 9021
NOT_PROXIABLE = 9041
RECORD_NOT_FOUND = 81044
CNAME_TARGET_EXISTS = 81053
CNAME_EXISTS = 81054
IDENTICAL_RECORD = 81058
RATE_LIMITED = 971
# 1004 "Missing 'items'": the live API's answer to a bulk settings edit without the wrapper (the OpenAPI document's note).
MISSING_ITEMS = 1004
UNKNOWN_SETTING = 1006
INVALID_SETTING_VALUE = 1007
# The lab's choice: no public trace shows the code of an edit refused because the plan does not allow it.
SETTING_NOT_EDITABLE = 1011
ENTRYPOINT_NOT_FOUND = 10003
# The lab's choice for every ruleset validation error (bad expression, action, parameters): no public trace names one.
RULESET_INVALID = 20021
CERTIFICATE_ZONE_REQUIRED = 1012
CERTIFICATE_NOT_AUTHORIZED = 1016
# The lab's choices for an unreadable CSR, a CSR whose key does not match request_type and an unknown certificate.
CERTIFICATE_BAD_CSR = 1010
CERTIFICATE_NOT_FOUND = 1013


class ApiError(Exception):
    """An answer with ``success: false``: raise it anywhere below a route handler."""

    def __init__(self, status: int, code: int, message: str, chain: list[dict[str, Any]] | None = None, pointer: str | None = None):
        super().__init__(message)
        self.status = status
        self.error: dict[str, Any] = {"code": code, "message": message}
        if chain:
            self.error["error_chain"] = chain
        if pointer is not None:
            self.error["source"] = {"pointer": pointer}
        self.extra_errors: list[dict[str, Any]] = []

    @property
    def code(self) -> int:
        return int(self.error["code"])

    @property
    def codes(self) -> list[int]:
        """The top-level code and every code in its error chain."""
        return [self.code] + [int(link["code"]) for link in self.error.get("error_chain", [])]

    def at(self, pointer: str) -> ApiError:
        """The same error, pointing at the part of the request body that caused it (used by batch)."""
        self.error["source"] = {"pointer": pointer}
        return self

    def body(self) -> dict[str, Any]:
        return failure([self.error, *self.extra_errors])


def validation_error(code: int, message: str) -> ApiError:
    """A DNS validation error in the shape Cloudflare uses for it: 1004 with the detail in its error chain."""
    return ApiError(400, DNS_VALIDATION, "DNS Validation Error", chain=[{"code": code, "message": message}])


def envelope(result: Any, result_info: dict[str, Any] | None = None, messages: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"success": True, "errors": [], "messages": messages or [], "result": result}
    if result_info is not None:
        body["result_info"] = result_info
    return body


def failure(errors: list[dict[str, Any]]) -> dict[str, Any]:
    return {"success": False, "errors": errors, "messages": [], "result": None}


def no_route(path: str) -> ApiError:
    error = ApiError(400, COULD_NOT_ROUTE, "Could not route to %s, perhaps your object identifier is invalid?" % path)
    error.extra_errors.append({"code": NO_ROUTE, "message": "No route for that URI"})
    return error
