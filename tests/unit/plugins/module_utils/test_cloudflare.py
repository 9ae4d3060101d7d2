# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import ast
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
import yaml

from ansible_collections.launchready.core.plugins.module_utils import _cloudflare
from ansible_collections.launchready.core.plugins.module_utils._cloudflare import (
    PER_PAGE_DNS_RECORDS,
    CloudflareClient,
    CloudflareError,
    cloudflare_argument_spec,
    is_zone_id,
    zone_plan,
)
from ansible_collections.launchready.core.tests.unit.plugins.fake_cloudflare import (
    ANY,
    FakeCloudflare,
    Sleeps,
    envelope,
    fake_token,
    record,
    zone_id,
    zone_object,
)

ROOT = Path(__file__).resolve().parents[4]


@pytest.fixture
def token():
    return fake_token()


@pytest.fixture
def fake(token):
    return FakeCloudflare(token)


def client(fake, token, retries=5, base_url="https://api.cloudflare.com/client/v4"):
    sleeps = Sleeps()
    return CloudflareClient(token, base_url, timeout=5, retries=retries, transport=fake.transport, sleep=sleeps), sleeps


def test_the_argument_spec_matches_the_doc_fragment():
    source = (ROOT / "plugins" / "doc_fragments" / "cloudflare.py").read_text()
    fragment = next(
        node.value.value for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Assign) and node.targets[0].id == "DOCUMENTATION"
    )
    # The fragment's notes quote YAML (a colon in C(...)); only its options matter here.
    options = yaml.safe_load(fragment.split("\nrequirements:")[0])["options"]
    spec = cloudflare_argument_spec()
    assert sorted(spec) == sorted(options)
    for name, doc in options.items():
        assert spec[name]["type"] == doc["type"], name
        assert spec[name].get("default") == doc.get("default"), name
        assert bool(spec[name].get("required")) == bool(doc.get("required")), name
    assert spec["api_token"]["no_log"] is True
    assert spec["api_token"]["fallback"][1] == ["CLOUDFLARE_API_TOKEN"]


def test_the_envelope_is_unwrapped_and_the_token_sent_as_bearer(fake, token):
    fake.expect("GET", "/user/tokens/verify", result={"id": "t1", "status": "active"}, messages=[{"code": 10000, "message": "This API Token is valid"}])
    fake.expect("POST", "/zones/z/things", json={"a": 1}, result={"id": "x"})
    api, _sleeps = client(fake, token)
    assert api.get("/user/tokens/verify") == {"id": "t1", "status": "active"}
    assert api.post("/zones/z/things", json={"a": 1}) == {"id": "x"}
    assert api.api_calls == 2
    fake.assert_done()
    assert fake.calls[0].headers["authorization"] == "Bearer " + token


def test_the_base_url_path_is_kept(token):
    fake = FakeCloudflare(token, base_url="http://127.0.0.1:9/lab/client/v4/")
    fake.expect("GET", "/zones/abc", result={})
    api, _sleeps = client(fake, token, base_url="http://127.0.0.1:9/lab/client/v4/")
    api.get("/zones/abc")
    fake.assert_done()


def test_pagination_lists_every_page_at_the_largest_page_size(fake, token):
    records = [record(str(i), "A", "h%d.example.com" % i, "192.0.2.1") for i in range(7)]
    fake.list_records("z1", records, per_page=3)
    api, _sleeps = client(fake, token)
    assert api.dns_records("z1") == records
    assert (api.api_calls, api.pages) == (3, 3)
    assert {call.params["per_page"] for call in fake.calls} == {str(PER_PAGE_DNS_RECORDS)}
    assert [call.params["page"] for call in fake.calls] == ["1", "2", "3"]
    fake.assert_done()


def test_pagination_without_total_pages_stops_on_a_short_page(fake, token):
    fake.expect("GET", "/items", params={"page": "1", "per_page": "2"}, result=[1, 2], result_info={"page": 1, "per_page": 2})
    fake.expect("GET", "/items", params={"page": "2", "per_page": "2"}, result=[3], result_info={"page": 2, "per_page": 2})
    api, _sleeps = client(fake, token)
    assert api.paginate("/items", per_page=2) == [1, 2, 3]
    fake.assert_done()


def test_pagination_uses_total_count_when_total_pages_is_missing(fake, token):
    fake.expect("GET", "/items", params={"page": "1", "per_page": "2"}, result=[1, 2], result_info={"per_page": 2, "total_count": 2})
    api, _sleeps = client(fake, token)
    assert api.paginate("/items", per_page=2) == [1, 2]
    fake.assert_done()


def _rate_limited(retry_after):
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    return dict(status=429, errors=[{"code": 971, "message": "Please wait and consider throttling your request speed"}], headers=headers)


@pytest.mark.parametrize("retry_after, waited", [("7", 7.0), ("0", 0.0), ("120", 60.0), ("2.5", 2.5), (None, 1.0), ("soon", 1.0)])
def test_429_is_retried_after_retry_after_capped_at_60_seconds(fake, token, retry_after, waited):
    fake.expect("GET", "/zones/z", **_rate_limited(retry_after))
    fake.expect("GET", "/zones/z", result={"id": "z"})
    api, sleeps = client(fake, token)
    assert api.get("/zones/z") == {"id": "z"}
    assert sleeps == [waited]
    assert api.api_calls == 2
    fake.assert_done()


def test_retry_after_as_an_http_date_is_honoured(fake, token):
    when = datetime.now(timezone.utc) + timedelta(seconds=30)
    fake.expect("GET", "/zones/z", **_rate_limited(format_datetime(when, usegmt=True)))
    fake.expect("GET", "/zones/z", result={})
    api, sleeps = client(fake, token)
    api.get("/zones/z")
    assert 25 <= sleeps[0] <= 30


def test_5xx_is_retried_with_exponential_backoff(fake, token):
    for status in (500, 502, 503):
        fake.expect("GET", "/zones/z", status=status, body="<html>upstream trouble</html>")
    fake.expect("GET", "/zones/z", result={"id": "z"})
    api, sleeps = client(fake, token)
    assert api.get("/zones/z") == {"id": "z"}
    assert sleeps == [1.0, 2.0, 4.0]
    assert api.api_calls == 4
    fake.assert_done()


def test_backoff_is_capped():
    assert [_cloudflare._backoff(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]


def test_retries_give_up_after_the_configured_count(fake, token):
    for _attempt in range(3):
        fake.expect("POST", "/zones/z/dns_records/batch", json=ANY, status=503, errors=[{"code": 10001, "message": "service unavailable"}])
    api, sleeps = client(fake, token, retries=2)
    with pytest.raises(CloudflareError) as caught:
        api.dns_batch("z", {"posts": []})
    assert caught.value.status == 503 and caught.value.codes == [10001]
    assert str(caught.value) == "POST /zones/z/dns_records/batch failed with HTTP 503: 10001 service unavailable (still failing after 2 retries)"
    assert len(sleeps) == 2 and api.api_calls == 3
    fake.assert_done()


def test_429_without_retries_left_says_so(fake, token):
    fake.expect("GET", "/zones/z", **_rate_limited("1"))
    api, sleeps = client(fake, token, retries=0)
    with pytest.raises(CloudflareError, match=r"HTTP 429: 971 Please wait .*still rate limited after 0 retries"):
        api.get("/zones/z")
    assert sleeps == []


def test_connection_errors_are_retried(fake, token):
    fake.expect("GET", "/zones/z", error=httpx.ConnectError("connection refused"))
    fake.expect("GET", "/zones/z", error=httpx.ReadTimeout("timed out"))
    fake.expect("GET", "/zones/z", result={})
    fake.expect("POST", "/zones/z/dns_records/batch", json={}, error=httpx.ConnectError("connection refused"))
    fake.expect("POST", "/zones/z/dns_records/batch", json={}, result={})
    api, sleeps = client(fake, token)
    assert api.get("/zones/z") == {}
    assert api.dns_batch("z", {}) == {}
    assert sleeps == [1.0, 2.0, 1.0]
    assert api.api_calls == 5
    fake.assert_done()


def test_a_write_that_may_have_reached_the_api_is_not_retried(fake, token):
    fake.expect("POST", "/zones/z/dns_records/batch", json={"posts": []}, error=httpx.ReadTimeout("timed out"))
    api, sleeps = client(fake, token)
    with pytest.raises(CloudflareError, match="may or may not have been applied: run the task again") as caught:
        api.dns_batch("z", {"posts": []})
    assert caught.value.status is None and sleeps == [] and api.api_calls == 1
    fake.assert_done()


def test_connection_failures_end_in_one_clear_error(fake, token):
    for _attempt in range(2):
        fake.expect("GET", "/zones", params=ANY, error=httpx.ConnectError("[Errno 111] Connection refused"))
    api, _sleeps = client(fake, token, retries=1)
    with pytest.raises(CloudflareError) as caught:
        api.zone("example.com")
    assert str(caught.value) == "GET /zones: no answer from the Cloudflare API after 2 attempt(s) (ConnectError: [Errno 111] Connection refused)"


def test_api_errors_map_to_one_exception_with_status_codes_and_messages(fake, token):
    fake.expect(
        "POST", "/zones/z/dns_records/batch", json=ANY, status=400,
        errors=[
            {"code": 9005, "message": "Content for A record is invalid. Must be a valid IPv4 address", "source": {"pointer": "/posts/2/content"}},
            {"code": 1004, "message": "DNS Validation Error"},
        ],
    )
    api, sleeps = client(fake, token)
    with pytest.raises(CloudflareError) as caught:
        api.dns_batch("z", {"posts": [{}, {}, {}]})
    error = caught.value
    assert (error.status, error.codes, error.method, error.path) == (400, [9005, 1004], "POST", "/zones/z/dns_records/batch")
    assert str(error) == (
        "POST /zones/z/dns_records/batch failed with HTTP 400: 9005 Content for A record is invalid. Must be a valid IPv4 address; 1004 DNS Validation Error"
    )
    assert error.batch_pointers() == [("posts", 2)]
    assert error.as_result() == {
        "status": 400,
        "error_codes": [9005, 1004],
        "errors": [
            {"code": 9005, "message": "Content for A record is invalid. Must be a valid IPv4 address", "pointer": "/posts/2/content"},
            {"code": 1004, "message": "DNS Validation Error"},
        ],
    }
    assert sleeps == []  # a 4xx other than 429 is not retried


def test_batch_pointers_are_also_read_from_messages():
    error = CloudflareError("x", 400, [{"code": 1, "message": "patches[3]: record not found"}, {"code": 2, "message": "nothing"}])
    assert error.batch_pointers() == [("patches", 3)]


def test_success_false_is_an_error_even_with_http_200(fake, token):
    fake.expect("GET", "/zones/z", body=envelope(None, success=False, errors=[{"code": 7003, "message": "Could not route"}]))
    api, _sleeps = client(fake, token)
    with pytest.raises(CloudflareError, match="HTTP 200: 7003 Could not route"):
        api.get("/zones/z")


def test_an_answer_that_is_not_an_envelope_is_reported(fake, token):
    fake.expect("GET", "/zones/z", status=502, body="<html>Bad gateway</html>")
    api, _sleeps = client(fake, token, retries=0)
    with pytest.raises(CloudflareError, match="HTTP 502, and the answer is not a Cloudflare API envelope: <html>Bad gateway</html>"):
        api.get("/zones/z")


def test_auth_failures_say_what_to_check(fake, token):
    fake.expect("GET", "/zones", params=ANY, status=403, errors=[{"code": 10000, "message": "Authentication error"}])
    api, _sleeps = client(fake, token)
    with pytest.raises(CloudflareError, match=r"403: 10000 Authentication error\. Check that api_token is valid, active, and has the permissions"):
        api.zone("example.com")


def test_the_token_never_appears_in_errors(fake, token):
    fake.expect("GET", "/zones/z", status=400, errors=[{"code": 6003, "message": "Invalid request headers: Bearer %s is malformed" % token}])
    fake.expect("GET", "/zones/z", status=400, body="token was %s" % token)
    fake.expect("GET", "/zones/z", error=httpx.ConnectError("proxy refused %s" % token))
    api, _sleeps = client(fake, token, retries=0)
    for _call in range(3):
        with pytest.raises(CloudflareError) as caught:
            api.get("/zones/z")
        assert token not in str(caught.value) and token not in repr(caught.value.as_result())
        assert "********" in str(caught.value)


def test_an_empty_token_is_refused_before_any_call(fake):
    with pytest.raises(CloudflareError, match="api_token is empty"):
        CloudflareClient("  ", transport=fake.transport)
    assert fake.calls == []


def test_a_zone_is_looked_up_by_name(fake, token):
    zid = zone_id()
    fake.zone_lookup("example.com", zid, plan="pro")
    api, _sleeps = client(fake, token)
    assert api.zone("Example.COM.") == {"id": zid, "name": "example.com", "plan": "pro"}
    assert api.api_calls == 1
    fake.assert_done()


def test_a_zone_is_looked_up_by_id(fake, token):
    zid = zone_id()
    fake.zone_get("example.com", zid, plan="business")
    api, _sleeps = client(fake, token)
    assert api.zone(zid.upper()) == {"id": zid, "name": "example.com", "plan": "business"}
    fake.assert_done()


def test_a_missing_zone_is_reported_clearly(fake, token):
    fake.expect("GET", "/zones", params={"name": "nope.test", "page": "1", "per_page": "50"}, result=[], result_info={"total_pages": 0})
    zid = zone_id()
    fake.expect("GET", "/zones/%s" % zid, status=404, errors=[{"code": 1001, "message": "Invalid zone identifier"}])
    api, _sleeps = client(fake, token)
    with pytest.raises(CloudflareError, match=r"zone nope\.test not found: it is not in the account, or the API token cannot see it"):
        api.zone("nope.test")
    with pytest.raises(CloudflareError, match="zone id %s not found" % zid):
        api.zone(zid)
    fake.assert_done()


def test_zone_names_matching_several_zones_ask_for_the_id(fake, token):
    a, b = zone_id(), zone_id()
    fake.expect("GET", "/zones", params=ANY, result=[zone_object("example.com", a), zone_object("example.com", b)], result_info={"total_pages": 1})
    api, _sleeps = client(fake, token)
    with pytest.raises(CloudflareError, match=r"2 zones are named example\.com .* give the zone id"):
        api.zone("example.com")


def test_zone_ids_and_plans_are_recognised():
    assert is_zone_id("023e105f4ecef8ad9ca31a8372d0c353") and is_zone_id("023E105F4ECEF8AD9CA31A8372D0C353")
    assert not is_zone_id("example.com") and not is_zone_id("023e105f4ecef8ad9ca31a8372d0c35")
    assert zone_plan({"plan": {"legacy_id": "pro", "name": "Pro Website"}}) == "pro"
    assert zone_plan({"plan": {"name": "Enterprise Website"}}) == "enterprise"
    assert zone_plan({}) == "unknown"
