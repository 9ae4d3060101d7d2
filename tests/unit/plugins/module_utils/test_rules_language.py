# Copyright (c) launchready.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.launchready.core.plugins.module_utils._rules_language import ExpressionError, check_filter, check_target, quote


@pytest.mark.parametrize("expression", [
    'http.host eq "example.com"',
    'http.host == "example.com" && http.request.uri.path != "/"',
    'http.host in {"example.com" "www.example.com"}',
    '(http.host eq "a.test" or http.host eq "b.test") and not starts_with(http.request.uri.path, "/admin")',
    'ends_with(http.request.uri.path, ".css") or http.request.full_uri contains "?utm_"',
    'http.request.method in {"POST" "PUT"} and http.cookie contains "session="',
    'ip.src in {192.0.2.0/24 198.51.100.7 2001:db8::/32} or ip.src eq 203.0.113.1',
    'not ip.src in {10.0.0.0/8}',
    'http.request.uri.path matches "^/(login|auth)/"',
    'http.request.uri.path ~ "^/api/"',
    'lower(http.host) eq "example.com"',
    'len(http.request.uri.query) gt 100',
    'ssl',
    'not ssl xor http.host eq "a"',
    '!(http.user_agent contains "bot") || http.referer eq ""',
    'http.request.uri.query eq "a=\\"quoted\\""',
    'http.host eq "a"\n  and http.request.uri eq "/x?y=1"',
])
def test_expressions_of_the_subset_pass(expression):
    check_filter(expression)


@pytest.mark.parametrize("expression, message", [
    ('http.host eq "a" and (http.request.uri.path eq "/x"', "unbalanced '(': it is never closed at line 1, column 22:"),
    ('http.host eq "a")', "unbalanced ')': nothing opened it at line 1, column 17:"),
    ('http.host in {"a" "b"', "unbalanced '{': it is never closed"),
    ('(http.host eq "a"}', "unbalanced '}': nothing opened it"),
    ('http.host eq "a', "unterminated string: this quote is never closed at line 1, column 14:"),
    ('http.hots eq "a"', "unknown field 'http.hots'; the fields accepted are http.host,"),
    ('http.host equals "a"', "unknown operator 'equals'; the operators accepted are eq, ne, contains, matches, lt, le, gt, ge and in"),
    ('http.host eq', "expected a field, a function or a value (the expression ends here)"),
    ('http.host', "A text value is not a condition: compare it with eq, ne, contains, matches or in"),
    ('ip.src eq "192.0.2.1"', "expected an IP address to compare with, got a text value (write IP addresses without quotes"),
    ('ip.src contains "192"', "contains cannot compare an IP address (it compares text values)"),
    ('ip.src in {"192.0.2.1"}', "expected an IP address or network (unquoted) in the set (write IP addresses without quotes"),
    ('ip.src in {300.1.2.3}', "'300.1.2.3' is not an IP address or network"),
    ('ip.src eq 192.0.2.0/24', "a network is only accepted inside a set, as in ip.src in {192.0.2.0/24}"),
    ('http.host eq 42', "expected a text value to compare with, got a number (put text in double quotes)"),
    ('http.host in {}', "a set needs at least one value"),
    ('http.request.uri.path matches "^/(a"', "invalid regular expression"),
    ('starts_with(http.request.uri.path)', "starts_with() takes 2 arguments, got 1"),
    ('starts_with(ip.src, "1")', "starts_with() expects a text value here, got an IP address"),
    ('regex_replace(http.host, "a", "b") eq "x"', "unknown function 'regex_replace'; the functions accepted are starts_with()"),
    ('concat(http.host, "/") eq "a/"', "concat() is only accepted in a redirect target expression"),
    ('http.host eq "a" and', "expected a field, a function or a value (the expression ends here)"),
    ('http.host eq "a" and or http.host eq "b"', "expected a field, a function or a value before 'or'"),
    ('http.host eq "a" ; drop', "unexpected character ';'"),
    ('http.host eq "a" http.host eq "b"', "unexpected 'http.host': join conditions with and, or, not"),
    ('', "the expression is empty"),
    ('   ', "the expression is empty"),
    ('http.host eq "%s"' % ("a" * 5000), "Cloudflare accepts at most 4096"),
])
def test_mistakes_are_named_and_pointed_at(expression, message):
    with pytest.raises(ExpressionError) as caught:
        check_filter(expression)
    assert message in str(caught.value)


def test_the_caret_points_under_the_mistake():
    with pytest.raises(ExpressionError) as caught:
        check_filter('http.host eq "a" and http.hots eq "b"')
    lines = str(caught.value).splitlines()
    assert lines[1] == '    http.host eq "a" and http.hots eq "b"'
    assert lines[2] == "    " + " " * 21 + "^" * 9


def test_a_mistake_on_a_later_line_names_its_line():
    with pytest.raises(ExpressionError) as caught:
        check_filter('http.host eq "a"\nand http.nope eq "b"')
    assert "at line 2, column 5:" in str(caught.value)


@pytest.mark.parametrize("expression", [
    'concat("https://example.com", http.request.uri.path)',
    'concat("https://example.com", http.request.uri.path, "/")',
    '"https://example.com/"',
    'lower(concat("https://", http.host, http.request.uri.path))',
])
def test_redirect_targets_of_the_subset_pass(expression):
    check_target(expression)


@pytest.mark.parametrize("expression, message", [
    ('concat()', "concat() takes at least one argument"),
    ('concat("https://a", ip.src)', "concat() expects a text value here, got an IP address"),
    ('http.host eq "a"', "a redirect target is one value"),
    ('len(http.host)', "a redirect target must give a text value (a URL), not a number"),
    ('concat("https://a", http.request.uri.path', "unbalanced '(': it is never closed"),
])
def test_bad_redirect_targets_fail(expression, message):
    with pytest.raises(ExpressionError) as caught:
        check_target(expression)
    assert message in str(caught.value)


def test_quote_escapes_quotes_and_backslashes():
    assert quote('a"b\\c') == '"a\\"b\\\\c"'
    check_filter("http.host eq %s" % quote('we"ird'))
