# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Lab self-tests of the API tokens routes (tests/lab/api_tokens.py); the session guard checks every answer against the schema."""

from __future__ import annotations

import httpx

from tests.lab.api_tokens import LAB_USER_ID
from tests.lab.api_zones import LAB_ACCOUNT
from tests.lab.client import Lab


def client(lab: Lab, token: str) -> httpx.Client:
    return httpx.Client(base_url=lab.api_base_url, headers={"Authorization": "Bearer " + token}, timeout=30)


def test_any_active_token_verifies_itself(lab):
    token = lab.add_token([], zones=["launch-demo.test"])
    body = client(lab, token).get("/user/tokens/verify").json()
    assert body["success"] is True
    assert body["messages"] == [{"code": 10000, "message": "This API Token is valid and active"}]
    assert body["result"]["status"] == "active" and len(body["result"]["id"]) == 32


def test_a_disabled_token_is_refused(lab):
    token = lab.add_token(["zone:read"], status="disabled")
    answer = client(lab, token).get("/user/tokens/verify")
    assert answer.status_code == 401 and answer.json()["success"] is False


def test_token_details_show_policies_per_scope(lab):
    reader = lab.add_token(["api_tokens:read"], zones=["launch-demo.test"])
    scoped = lab.add_token(["zone:read", "dns_records:edit", "workers_scripts:edit"], zones=["launch-demo.test"])
    wide = lab.add_token(["zone_settings:read"], zones=["*"])
    api = client(lab, reader)
    scoped_id = client(lab, scoped).get("/user/tokens/verify").json()["result"]["id"]
    wide_id = client(lab, wide).get("/user/tokens/verify").json()["result"]["id"]

    details = api.get("/user/tokens/%s" % scoped_id).json()["result"]
    assert details["status"] == "active" and details["name"] == "lab token %s" % scoped_id[:8]
    policies = {tuple(sorted(g["name"] for g in p["permission_groups"])): p["resources"] for p in details["policies"]}
    assert policies == {
        ("DNS Write", "Zone Read"): {"com.cloudflare.api.account.zone.%s" % lab.zone_id("launch-demo.test"): "*"},
        ("Workers Scripts Write",): {"com.cloudflare.api.account.%s" % LAB_ACCOUNT["id"]: "*"},
    }
    (policy,) = api.get("/user/tokens/%s" % wide_id).json()["result"]["policies"]
    assert policy["resources"] == {"com.cloudflare.api.account.zone.*": "*"} and policy["effect"] == "allow"
    own = api.get("/user/tokens/%s" % client(lab, reader).get("/user/tokens/verify").json()["result"]["id"]).json()["result"]
    assert own["policies"][0]["resources"] == {"com.cloudflare.api.user.%s" % LAB_USER_ID: "*"}


def test_token_details_need_api_tokens_read_and_a_known_id(lab):
    token = lab.add_token(["zone:read"], zones=["launch-demo.test"])
    own_id = client(lab, token).get("/user/tokens/verify").json()["result"]["id"]
    denied = client(lab, token).get("/user/tokens/%s" % own_id)
    assert denied.status_code == 403
    reader = lab.add_token(["api_tokens:read"])
    missing = client(lab, reader).get("/user/tokens/%s" % ("0" * 32))
    assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == 1000
