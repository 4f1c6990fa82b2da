"""Hostile input never gets a 5xx, and a refused ingestion changes nothing stored.

Property-based (hypothesis): each endpoint gets bodies, path segments and query values
built as raw bytes from hostile fragments (lone surrogates, NaN and Infinity, numbers
beyond float and int64, deep nesting, control characters, invalid UTF-8, wrong types)
spliced into an otherwise valid request. One app with the tiny in-process model serves
every example of a test.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

EXAMPLES = 150
JSON = {"content-type": "application/json"}

# JSON fragments that are not (strict) JSON, or are JSON of a hostile kind
FRAGMENTS: list[bytes] = [
    b"NaN",
    b"-NaN",
    b"Infinity",
    b"-Infinity",
    b"1e400",
    b"-1e400",
    b"1e-400",
    b"99999999999999999999999999999",
    b"-9223372036854775809",
    b"18446744073709551616",
    b"4.9e-324",
    b"1.7976931348623157e308",
    b'"\\udfff"',
    b'"x\\udfffy"',
    b'"\\ud800"',
    b'"\\ud800\\u0041"',
    b'"\\udc00\\ud800"',
    b'"\\u0000"',
    b'"a\\tb"',
    b'"\\u001b[31m"',
    b'"\\u2028\\u2029"',
    b'"\xff\xfe"',
    b'"\xed\xbf\xbf"',
    b'"\xc0\xaf"',
    b'"\xf4\x90\x80\x80"',
    b"true",
    b"false",
    b"null",
    b"0",
    b"-1",
    b"1.5",
    b'"5"',
    b'""',
    b"[]",
    b"{}",
    b'["1"]',
    b'{"a": 1}',
    b"[" * 2000 + b"]" * 2000,
    b"[" * 600 + b"]" * 600,
    b'{"a":' * 300 + b"1" + b"}" * 300,
    b'"' + b"x" * 5000 + b'"',
    b"[" + b",".join([b'"1"'] * 500) + b"]",
    b"01",
    b"+1",
    b".5",
    b"'single'",
    b"",
    b"\x00",
]

# text hypothesis makes up, lone surrogates and control characters included
any_text = st.text(st.characters(exclude_categories=()), max_size=40)


def as_json_string(text: str) -> bytes:
    """``text`` as a JSON string literal; lone surrogates become \\uXXXX escapes."""
    return json.dumps(text).encode("ascii")


# a string with at least one lone surrogate (what a JSON \\uXXXX escape can smuggle in)
with_surrogate = st.builds(
    lambda a, s, b: a + s + b, any_text, st.characters(categories=["Cs"]), any_text
)

fragments = st.one_of(
    st.sampled_from(FRAGMENTS),
    any_text.map(as_json_string),
    with_surrogate.map(as_json_string),
    st.integers().map(lambda n: str(n).encode()),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: repr(f).encode()),
    st.binary(max_size=20),
)


def render(value: Any) -> bytes:
    """A template value as JSON bytes; a ``bytes`` leaf is spliced in raw."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, dict):
        inner = b",".join(render(k) + b":" + render(v) for k, v in value.items())
        return b"{" + inner + b"}"
    if isinstance(value, list):
        return b"[" + b",".join(render(v) for v in value) + b"]"
    return json.dumps(value).encode()


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every position in a template (dict keys included, as ("key", name))."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found.append((*prefix, ("key", key)))
            found.extend(paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(paths(child, (*prefix, index)))
    return found


def spliced(template: Any, path: tuple[Any, ...], fragment: bytes) -> Any:
    """``template`` with the value (or key) at ``path`` replaced by a raw ``fragment``."""
    if not path:
        return fragment
    if isinstance(template, bytes):  # already replaced by an earlier splice
        return template
    head, rest = path[0], path[1:]
    if isinstance(head, tuple):  # replace a key
        _, name = head
        return {(fragment if k == name else k): v for k, v in template.items()}
    if isinstance(template, dict):
        return {k: (spliced(v, rest, fragment) if k == head else v) for k, v in template.items()}
    return [spliced(v, rest, fragment) if i == head else v for i, v in enumerate(template)]


RECOMMEND = {"user_id": "1", "k": 3, "explain": False, "candidates": ["50", "181", "258"]}
INGEST = {
    "interactions": [{"user_id": "1", "item_id": "50", "timestamp": 1_700_000_000, "rating": 4}],
    "items": [{"item_id": "50", "title": "Star Wars", "attributes": {"genres": "Sci-Fi"}}],
}


def bodies(template: Any) -> st.SearchStrategy[bytes]:
    """The template with one or two positions replaced, or an extra key, or raw junk."""
    positions = paths(template)

    def one(data: tuple[tuple[Any, ...], bytes]) -> Any:
        return spliced(template, *data)

    single = st.tuples(st.sampled_from(positions), fragments).map(one)
    double = st.tuples(st.sampled_from(positions), fragments, st.sampled_from(positions)).map(
        lambda d: (
            spliced(spliced(template, d[0], d[1]), d[2], b"NaN")
            if d[2] != d[0]
            else spliced(template, d[0], d[1])
        )
    )
    extra = st.tuples(any_text, fragments).map(
        lambda d: (
            {**template, as_json_string(d[0]): d[1]} if isinstance(template, dict) else template
        )
    )
    return st.one_of(single, double, extra).map(render) | fragments


def url_segment(raw: bytes) -> str:
    """Percent-encode raw bytes so that they reach the app exactly (invalid UTF-8 too)."""
    return "".join(f"%{b:02X}" for b in raw)


segments = st.one_of(
    st.sampled_from(
        [
            b"\xed\xbf\xbf",
            b"\xff",
            b"\x00",
            b"a\x1bb",
            b"x" * 300,
            b"..",
            b"NaN",
            b"50",
            b"1",
            "caf\u00e9".encode(),
        ]
    ),
    st.binary(min_size=1, max_size=30),
    any_text.filter(bool).map(lambda t: t.encode("utf-8", "surrogatepass")),
)
query_values = st.one_of(
    st.sampled_from(
        [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"99999999999999999999", b"-1", b"0"]
    ),
    st.sampled_from([b"true", b"false", b"yes", b"", b"\xed\xbf\xbf", b"\x00", b"1.5", b"5"]),
    st.binary(max_size=12),
)

SLOW_OK = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _no_5xx(reply: Any) -> None:
    assert reply.status_code < 500, (reply.status_code, reply.text[:500])
    if reply.status_code == 422:
        assert len(reply.content) < 20_000, len(reply.content)
        reply.json()  # the error body is itself valid JSON


def test_recommend_never_answers_5xx(make_client) -> None:
    client = make_client()

    @SLOW_OK
    @given(body=bodies(RECOMMEND))
    @example(body=b'{"user_id":"42","k":NaN}')
    @example(body=b'{"user_id":"\\udfff","k":1}')
    @example(body=b'{"user_id":"42","k":true}')
    def check(body: bytes) -> None:
        _no_5xx(client.post("/recommend", content=body, headers=JSON))

    check()


def test_user_recommendations_and_history_never_answer_5xx(make_client) -> None:
    client = make_client()

    @SLOW_OK
    @given(segment=segments, k=query_values, explain=query_values, which=st.booleans())
    def check(segment: bytes, k: bytes, explain: bytes, which: bool) -> None:
        user = url_segment(segment)
        if which:
            url = f"/users/{user}/recommendations?k={url_segment(k)}&explain={url_segment(explain)}"
        else:
            url = f"/users/{user}/history?n={url_segment(k)}"
        _no_5xx(client.get(url))

    check()


def test_items_never_answer_5xx(make_client) -> None:
    client = make_client()

    @SLOW_OK
    @given(segment=segments)
    def check(segment: bytes) -> None:
        _no_5xx(client.get(f"/items/{url_segment(segment)}"))

    check()


def _stored(client: Any) -> tuple[str, Any, Any]:
    ready = client.get("/readyz").json()["checks"]["graph_store"]["detail"]
    return ready, client.get("/items/50").json(), client.get("/users/1/history?n=5").json()


def test_interactions_never_answer_5xx_and_a_refusal_stores_nothing(make_client) -> None:
    client = make_client()

    @SLOW_OK
    @given(body=bodies(INGEST))
    @example(body=render(spliced(INGEST, ("items", 0, "attributes", "genres"), b'"x\\udfffy"')))
    @example(body=render(spliced(INGEST, ("items", 0, "title"), b'"\\ud800"')))
    def check(body: bytes) -> None:
        before = _stored(client)
        reply = client.post("/interactions", content=body, headers=JSON)
        _no_5xx(reply)
        if reply.status_code != 200:
            assert _stored(client) == before, body[:300]
            return
        # what was accepted reads back: the item, the history of every user in the batch
        sent = json.loads(body)
        for item in sent.get("items", []):
            _no_5xx(client.get(f"/items/{quote(item['item_id'], safe='')}"))
        for row in sent["interactions"]:
            _no_5xx(client.get(f"/users/{quote(row['user_id'], safe='')}/history"))
            _no_5xx(client.get(f"/items/{quote(row['item_id'], safe='')}"))

    check()


def test_the_reported_cases_are_422_saying_why(make_client) -> None:
    client = make_client()
    nan = client.post("/recommend", content=b'{"user_id":"42","k":NaN}', headers=JSON)
    assert nan.status_code == 422
    assert "NaN is not JSON" in nan.text and "line 1 column 21" in nan.text, nan.text
    for body, field in [
        ({"user_id": "42", "k": True}, "k"),
        ({"user_id": "42", "k": "5"}, "k"),
        ({"user_id": "42", "explain": 0}, "explain"),
    ]:
        reply = client.post("/recommend", json=body)
        assert reply.status_code == 422 and reply.json()["detail"][0]["loc"] == ["body", field]
    stored = render(spliced(INGEST, ("items", 0, "attributes", "genres"), b'"x\\udfffy"'))
    assert client.post("/interactions", content=stored, headers=JSON).status_code == 422
    assert client.get("/items/50").status_code == 200


def test_a_422_echoing_a_surrogate_or_a_huge_body_stays_small_and_valid() -> None:
    from service.errors import validation_body

    errors = [
        {"type": "string_type", "loc": ("body", "x\udfff"), "msg": "bad", "input": "a\udfffb"},
        {"type": "model_type", "loc": ("body",), "msg": "bad", "input": {"k": ["x"] * 10**5}},
    ] * 1000
    body = validation_body(errors)
    encoded = json.dumps(body, ensure_ascii=False).encode("utf-8")  # no surrogate left
    assert len(encoded) < 20_000 and body["more_errors"] == 2000 - 20
    assert body["detail"][0]["input"] == "a\\udfffb" and "input" not in body["detail"][1]


def test_a_near_megabyte_body_of_errors_gets_a_small_answer(make_client) -> None:
    client = make_client()
    rows = [{"user_id": "1", "item_id": "50", "timestamp": "x" * 80}] * 7000
    body = json.dumps({"interactions": rows}).encode()
    assert 900_000 < len(body) < 1_000_000
    reply = client.post("/interactions", content=body, headers=JSON)
    assert reply.status_code == 422 and len(reply.content) < 20_000
