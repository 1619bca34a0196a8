import json

import pyarrow as pa
import pytest
from dataflow_operators.text.pii import (
    PRECHECKS,
    PiiEvaluator,
    PiiRefiner,
    card_valid,
    find_pii,
    iban_checksum_valid,
    ipv4_valid,
    ipv6_valid,
    luhn_valid,
    phone_valid,
)
from pydantic import ValidationError
from typer.testing import CliRunner

from dataflow_cli.cli.app import app
from dataflow_cli.errors import DataflowError
from dataflow_cli.operator import Batch

BIG = 5 * 1024 * 1024


def batch(op, texts, column="text"):
    table = pa.table({column: pa.array(texts, pa.string()), "_id": [str(i) for i in range(len(texts))]})
    return Batch(table, op.input_columns)


def mask(texts, **params):
    op = PiiRefiner(PiiRefiner.Params(**params))
    result = op.process(batch(op, texts))
    assert set(result) == {"text"}
    return pa.array(result["text"]).to_pylist()


def evaluate(texts, **params):
    op = PiiEvaluator(PiiEvaluator.Params(**params))
    result = op.process(batch(op, texts))
    assert set(result) == {"pii_count", "pii_kinds"}
    assert result["pii_count"].type == pa.int64() and result["pii_kinds"].type == pa.string()
    return list(zip(result["pii_count"].to_pylist(), result["pii_kinds"].to_pylist(), strict=True))


# --- emails ---


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to john.doe@example.com today", "write to <EMAIL> today"),
        ("a+tag@mail.example.co.uk, b_c@x.io.", "<EMAIL>, <EMAIL>."),
        ("José.García@correo.es", "<EMAIL>"),
        (
            "not emails: user@localhost, @handle, a@b, name@host.c",
            "not emails: user@localhost, @handle, a@b, name@host.c",
        ),
    ],
)
def test_emails(text, expected):
    assert mask([text]) == [expected]


# --- phone numbers ---


@pytest.mark.parametrize(
    "phone",
    [
        "+1 (555) 123-4567",
        "+1-555-123-4567",
        "+15551234567",
        "+44 20 7946 0958",
        "+44 (0)20 7946 0958",
        "+49 30 123456",
        "+33 1 23 45 67 89",
        "+86 138 0013 8000",
        "(555) 123-4567",
        "(555)123-4567",
        "555-123-4567",
        "555.123.4567",
        "555 123 4567",
        "1-800-555-0199",
        "555-1234",
        "030 1234567",
        "0171-1234567",
        "020 7946 0958",
        "01 23 45 67 89",
        "0049 30 123456",
    ],
)
def test_phone_numbers_are_masked(phone):
    assert mask([f"Call {phone} now.", f"({phone})"]) == ["Call <PHONE> now.", "(<PHONE>)"]


@pytest.mark.parametrize(
    "text",
    [
        "Released on 2024-01-02 and 02.01.2024 or 1/2/24.",
        "From 2019-2024, in 1999 2000 2001 and 1990-2000.",
        "Version 10.0.19041.1, v1.2.3.4567, python 3.11.7.",
        "ISBN 978-3-16-148410-0 and 0-306-40615-2",
        "It costs 1 234 567 EUR or 1.234.567 USD or $ 1 234 567.",
        "Pages 1234-1245, ids 1700000000 and 5551234567, pi 3.14159265.",
        "Numbers 1 2 3 4 5 6 7 8 9",
        "Short 555-123 and 12-34-56",
        "Order #5551234567 and https://example.com/5551234567/555-123-4567",
        "Account 1234 5678 9012 3456 7890",
    ],
)
def test_non_phone_numbers_are_kept(text):
    assert mask([text], kinds=["phone"]) == [text]


def test_a_date_next_to_a_phone_number_stays_out_of_it():
    assert mask(["on 2024-01-02 call 555-123-4567 2024-01-03"]) == ["on 2024-01-02 call <PHONE> 2024-01-03"]


@pytest.mark.parametrize(
    ("candidate", "valid"),
    [
        ("+1 555 123 4567", True),
        ("+1234567", True),
        ("+123456", False),  # 6 digits
        ("+1234567890123456", False),  # 16 digits
        ("(555 123-4567", False),
        ("555) 123-4567", False),
        ("(55)(5) 123-4567", False),
    ],
)
def test_phone_valid(candidate, valid):
    assert phone_valid(candidate) is valid


# --- IP addresses ---


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("server 192.168.1.1 and 10.0.0.255.", "server <IP> and <IP>."),
        ("0.0.0.0 and 255.255.255.255", "<IP> and <IP>"),
        ("bad 256.1.1.1 and 1.2.3.256 and 999.1.1.1", "bad 256.1.1.1 and 1.2.3.256 and 999.1.1.1"),
        ("version 1.2.3.4.5 and v1.2.3.4 and 01.02.03.04", "version 1.2.3.4.5 and v1.2.3.4 and 01.02.03.04"),
        ("full 2001:0db8:85a3:0000:0000:8a2e:0370:7334 end", "full <IP> end"),
        ("short 2001:db8::8a2e:370:7334, ::1, fe80::1, 2001:db8::", "short <IP>, <IP>, <IP>, <IP>"),
        ("mapped ::ffff:192.0.2.1 ok", "mapped <IP> ok"),
        ("upper FE80::ABCD:1", "upper <IP>"),
        (
            "not ip: std::vector, a::b, 12:30:45, 00:1A:2B:3C:4D:5E, ::",
            "not ip: std::vector, a::b, 12:30:45, 00:1A:2B:3C:4D:5E, ::",
        ),
        ("bad 2001:db8::1::2 and 1:2:3:4:5:6:7:8:9", "bad 2001:db8::1::2 and 1:2:3:4:5:6:7:8:9"),
    ],
)
def test_ip_addresses(text, expected):
    assert mask([text], kinds=["ip"]) == [expected]


def test_ip_validators():
    assert ipv4_valid("192.168.0.1") and not ipv4_valid("192.168.0.256") and not ipv4_valid("192.168.00.1")
    assert ipv6_valid("::1") and ipv6_valid("dead:beef::cafe") and not ipv6_valid("a::b")
    assert not ipv6_valid("12:30:45") and not ipv6_valid("::")


# --- credit cards ---


@pytest.mark.parametrize(
    "card",
    [
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4111111111111111",
        "5555 5555 5555 4444",
        "3782 822463 10005",
        "378282246310005",
        "6011111111111117",
        "4222222222222",
    ],
)
def test_valid_cards_are_masked(card):
    assert mask([f"card: {card}."]) == ["card: <CREDIT_CARD>."]


@pytest.mark.parametrize(
    "number",
    [
        "4111 1111 1111 1112",  # Luhn fails
        "4111111111111112",
        "1111111111111117",  # passes Luhn, but no payment-card first digit
        "4111 1111-1111 1111",  # mixed separators
        "411 11111 1111 1111",  # first group not of four
        "41111111111111111111",  # 20 digits
    ],
)
def test_invalid_cards_are_kept(number):
    assert mask([f"number {number}"], kinds=["credit_card"]) == [f"number {number}"]


def test_luhn():
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")
    assert card_valid("4111 1111 1111 1111") and not card_valid("4111 1111 1111 111")


# --- IBAN ---


@pytest.mark.parametrize(
    "iban",
    [
        "GB82 WEST 1234 5698 7654 32",
        "GB82WEST12345698765432",
        "DE89 3704 0044 0532 0130 00",
        "DE89370400440532013000",
        "FR76 3000 6000 0112 3456 7890 189",
        "NL91 ABNA 0417 1643 00",
        "CH93 0076 2011 6238 5295 7",
        "BE68 5390 0754 7034",
    ],
)
def test_valid_ibans_are_masked(iban):
    assert mask([f"IBAN: {iban}, thanks", iban]) == ["IBAN: <IBAN>, thanks", "<IBAN>"]


@pytest.mark.parametrize(
    "text",
    [
        "GB82 WEST 1234 5698 7654 33",  # check digits do not match
        "DE88 3704 0044 0532 0130 00",
        "DE89 3704 0044 0532 0130 0",  # too short for Germany
        "DE89 3704 0044 0532 0130 00X",  # runs on into a word
        "ZZ82 WEST 1234 5698 7654 32",  # not an IBAN country
        "gb82 west 1234 5698 7654 32",  # lower case
    ],
)
def test_invalid_ibans_are_kept(text):
    assert mask([text]) == [text]


def test_iban_checksum():
    assert iban_checksum_valid("GB82WEST12345698765432")
    assert not iban_checksum_valid("GB28WEST12345698765432")
    assert not iban_checksum_valid("GB82WEST1234569876543!")


# --- all kinds together ---


def test_mixed_text_placeholder_and_kinds():
    text = (
        "Contact anna@example.org or +49 30 123456; server 10.1.2.3; "
        "card 4111 1111 1111 1111; IBAN DE89 3704 0044 0532 0130 00."
    )
    assert mask([text]) == ["Contact <EMAIL> or <PHONE>; server <IP>; card <CREDIT_CARD>; IBAN <IBAN>."]
    assert mask([text], placeholder="[{kind} removed]", kinds=["email", "iban"]) == [
        "Contact [EMAIL removed] or +49 30 123456; server 10.1.2.3; "
        "card 4111 1111 1111 1111; IBAN [IBAN removed]."
    ]
    assert mask([text], placeholder="***", kinds=["ip"]) == [text.replace("10.1.2.3", "***")]
    assert evaluate([text, "nothing here", "", None]) == [
        (5, "email,phone,ip,credit_card,iban"),
        (0, ""),
        (0, ""),
        (None, None),
    ]
    assert evaluate([text], kinds=["phone", "email"]) == [(2, "email,phone")]


def test_overlaps_resolve_by_priority():
    # An Amex number also looks like a phone number: the card wins.
    assert find_pii("378282246310005", {"phone", "credit_card"}) == [(0, 15, "credit_card")]
    assert find_pii("378282246310005", {"phone"}) == []  # a bare run is no phone number
    assert find_pii("3782 822463 10005", {"phone"}) == [(0, 17, "phone")]
    # The IPv6 address holds an IPv4 one: one item.
    assert find_pii("::ffff:10.0.0.1", {"ip"}) == [(0, 15, "ip")]


def test_unicode_and_cjk_around_pii():
    text = "日本語のメール: taro@example.jp 😀 電話 +81 3 1234 5678。"
    assert mask([text]) == ["日本語のメール: <EMAIL> 😀 電話 <PHONE>。"]


def test_nulls_empty_and_rows_without_pii_are_untouched():
    texts = [None, "", "plain text", "date 2024-01-02", "a@b"]
    assert mask(texts) == texts


def test_prechecks_cover_every_detected_item():
    # Every item the validators accept must also match its kind's RE2 pre-check.
    items = {
        "email": "x@y.io",
        "phone": "+49 30 123456",
        "ip": "::1",
        "credit_card": "4111-1111-1111-1111",
        "iban": "BE68 5390 0754 7034",
    }
    for kind, item in items.items():
        assert find_pii(item, {kind}) == [(0, len(item), kind)]
        assert pa.compute.match_substring_regex(pa.array([item]), PRECHECKS[kind]).to_pylist() == [True]


def test_huge_row():
    text = "filler words only " * (BIG // 18)
    assert mask([text + "mail me at a@b.com", "x"]) == [text + "mail me at <EMAIL>", "x"]
    assert evaluate([text + "+1 555 123 4567"]) == [(1, "phone")]


def test_params_and_bindings():
    with pytest.raises(ValidationError):
        PiiRefiner.Params(kinds=["ssn"])
    with pytest.raises(ValidationError):
        PiiRefiner.Params(kinds=[])
    with pytest.raises(ValidationError, match="Extra inputs"):
        PiiEvaluator.Params(placeholder="x")
    assert PiiRefiner.Params(kinds=["ip", "ip"]).kinds == ["ip"]
    op = PiiEvaluator(inputs={"text": "body"}, outputs={"pii_count": "n_pii"})
    assert op.required_columns() == ["body"]
    assert op.transform_schema({"body": "string"}) == {
        "body": "string",
        "n_pii": "int64",
        "pii_kinds": "string",
    }
    with pytest.raises(DataflowError, match="must be text"):
        op.process(Batch(pa.table({"body": [1], "_id": ["0"]}), op.input_columns))


# --- end to end through the CLI ---


def test_pii_end_to_end(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = [
        {"text": "Mail bob@example.com or call +1 555 123 4567."},
        {"text": "Pay to DE89 3704 0044 0532 0130 00 please."},
        {"text": "Nothing personal here, released 2024-01-02."},
    ]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "version: 1\nname: pii\ninput: {path: in.jsonl}\noutput: {path: out/o.jsonl}\nstages:\n"
        "  - {name: mask, op: pii_refiner, params: {kinds: [email, phone]}}\n"
        "  - {name: count, op: pii_evaluator}\n"
        "  - {name: no_pii, op: range_filter, inputs: {value: pii_count}, params: {max: 0}}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["run", str(spec), "--json"])
    assert result.exit_code == 0, result.stderr
    stats = json.loads(result.stdout)
    assert (stats["rows_read"], stats["rows_written"], stats["rows_rejected"]) == (3, 2, 1)
    kept = [json.loads(line) for line in (tmp_path / "out" / "o.jsonl").read_text().splitlines()]
    assert [(r["text"], r["pii_count"], r["pii_kinds"]) for r in kept] == [
        ("Mail <EMAIL> or call <PHONE>.", 0, ""),
        ("Nothing personal here, released 2024-01-02.", 0, ""),
    ]
    rejects = [
        json.loads(line)
        for line in (tmp_path / "out" / "rejects" / "o.rejects.jsonl").read_text().splitlines()
    ]
    assert [(r["_id"], r["_stage"], r["_reason"]) for r in rejects] == [("1", "no_pii", "`pii_count` > 0")]
