"""PII scrubbing without Spark: each kind found and replaced by its placeholder, counted per
document, and the near-misses that must stay (Luhn failures, version strings, times, dates)."""
from __future__ import annotations

import pyarrow as pa
import pytest

from udfs.quality.batches import scrub_pii
from udfs.quality.pii import PLACEHOLDERS, PiiScrubber, luhn_valid

FOUND = [
    ("email", "Write to jane.doe+news@example.co.uk today.", "Write to <EMAIL> today."),
    ("ip", "The server 8.8.8.8 answered.", "The server <IP_ADDRESS> answered."),
    ("ip", "Reach 2001:db8::8a2e:370:7334 over v6.", "Reach <IP_ADDRESS> over v6."),
    ("phone", "Call (415) 555-2671 after nine.", "Call <PHONE_NUMBER> after nine."),
    ("phone", "From abroad: +44 20 7946 0958.", "From abroad: <PHONE_NUMBER>."),
    ("phone", "Call 415.555.2671 now.", "Call <PHONE_NUMBER> now."),
    ("phone", "Tel. +33 1 42 68 53 00 in Paris.", "Tel. <PHONE_NUMBER> in Paris."),
    ("card", "Card 4111 1111 1111 1111 expires soon.", "Card <CREDIT_CARD> expires soon."),
    ("card", "Amex 378282246310005 on file.", "Amex <CREDIT_CARD> on file."),
    ("secret", "key AKIAIOSFODNN7EXAMPLE in the log", "key <SECRET> in the log"),
    ("secret", "token ghp_" + "a1B2" * 9 + " leaked", "token <SECRET> leaked"),
    ("secret", 'config: password = "hunter2hunter2"', 'config: password = "<SECRET>"'),
    ("secret", "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "<SECRET>"),
]
KEPT = [
    "Upgrade to version 1.2.3.4 before Friday.",      # a version string shaped like an IP
    "Release 10.0.0.1 fixes it; so does v2.3.4.5.",
    "The tuple 1.2.3.4.5 has five parts; 256.1.1.1 is out of range.",
    "Meet at 12:30:45 in room 3.",                     # a time, not IPv6
    "std::vector<int> and a :: b are code.",
    "Order 4111 1111 1111 1112 fails the Luhn check.",  # one digit off
    "Tracking number 1234567890123 shipped.",
    "Dates 2023-01-15 and pi 3.14159265 stay.",
    "ISBN 978-3-16-148410-0 is a book.",
    "Reach us at support at example dot com.",
    "Points per game: 45 12 33 18 90 21 76 41",         # a table row, not a card
    "The budget is 12 345 678 901 euros.",              # thousands separators, not a phone
    "See section 1.2.3.4 for details.",
    "api_key = os.environ['API_KEY']",                  # code that reads a secret holds none
]


@pytest.mark.parametrize("kind,text,expected", FOUND)
def test_each_kind_is_replaced_and_counted(kind, text, expected):
    out, counts = PiiScrubber().scrub(pa.array([text]))
    assert out.to_pylist() == [expected]
    assert {k: int(v[0]) for k, v in counts.items() if v[0]} == {kind: 1}


@pytest.mark.parametrize("text", KEPT)
def test_near_misses_are_left_alone(text):
    out, counts = PiiScrubber().scrub(pa.array([text]))
    assert out.to_pylist() == [text] and not any(int(v[0]) for v in counts.values())


def test_luhn():
    assert luhn_valid("4111111111111111") and luhn_valid("378282246310005")
    assert not luhn_valid("4111111111111112")


def test_only_configured_kinds_and_nulls():
    text = "mail a@b.io or call (415) 555-2671"
    out, counts = PiiScrubber(kinds=("email",)).scrub(pa.array([text, None]))
    assert out.to_pylist() == ["mail <EMAIL> or call (415) 555-2671", None] and set(counts) == {"email"}
    with pytest.raises(ValueError, match="unknown PII kinds"):
        PiiScrubber(kinds=("ssn",))


def test_batches_scrub_every_text_field_and_each_message():
    messages = pa.array([[{"role": "user", "content": "I am x@y.org"}, {"role": "assistant", "content": "Hi"}], None,
                         [{"role": "user", "content": "8.8.8.8 and 1.1.1.1"}, None, {"role": "user", "content": None}]],
                        pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())])))
    batch = pa.RecordBatch.from_pydict({
        "doc_id": ["a", "b", "c"], "text": ["x@y.org", "clean", "8.8.8.8"], "response": [None, "z@w.net", None],
        "messages": messages})
    out = next(scrub_pii(iter([batch.slice(0, 3)]), PiiScrubber()))
    assert out.column("text").to_pylist() == ["<EMAIL>", "clean", "<IP_ADDRESS>"]
    assert out.column("response").to_pylist() == [None, "<EMAIL>", None]
    assert out.column("messages").to_pylist()[0][0]["content"] == "I am <EMAIL>"
    assert out.column("messages").to_pylist()[1] is None
    assert out.column("messages").to_pylist()[2] == [
        {"role": "user", "content": "<IP_ADDRESS> and <IP_ADDRESS>"}, None, {"role": "user", "content": None}]
    assert out.column("pii_email").to_pylist() == [2, 1, 0] and out.column("pii_ip").to_pylist() == [0, 0, 3]
    sliced = next(scrub_pii(iter([batch.slice(2, 1)]), PiiScrubber()))  # offsets of a slice start past 0
    assert sliced.column("messages").to_pylist()[0][0]["content"] == "<IP_ADDRESS> and <IP_ADDRESS>"


def test_placeholders_are_typed():
    assert set(PLACEHOLDERS.values()) == {"<EMAIL>", "<IP_ADDRESS>", "<PHONE_NUMBER>", "<CREDIT_CARD>", "<SECRET>"}
