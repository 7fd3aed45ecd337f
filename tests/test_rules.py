"""The contract's message rules, table-driven."""

from __future__ import annotations

import pytest

from config.errors import InvalidMessage
from cosmos_api.rules import (
    MAX_BODY_BYTES,
    body_size,
    check_callback,
    check_from,
    check_size,
    check_text,
    check_to,
    text_units,
    validate_message,
)

TO = "033334445566770"


@pytest.mark.parametrize(
    "to, ok",
    [
        (TO, True),
        ("0" + "1" * 13, False),  # 14 characters
        ("0" + "1" * 15, False),  # 16 characters
        (TO + "\n", False),  # trailing newline
        ("13333444556677 0".replace(" ", ""), False),  # no leading 0
        ("0３３３３４４４５５６６７７０".replace("３", "3"), False),  # full-width digits
        ("0" + "١" * 14, False),  # Arabic-Indic digits
        ("", False),
        (None, False),
        (33334445566770, False),
    ],
)
def test_to_is_a_zero_and_fourteen_ascii_digits(to, ok):
    if ok:
        assert check_to(to) == to
    else:
        with pytest.raises(InvalidMessage) as err:
            check_to(to)
        assert err.value.status == "invalid_to" and err.value.field == "to"


@pytest.mark.parametrize(
    "text, ok",
    [
        ("a" * 179, True),
        ("a" * 180, False),
        ("a" * 177 + "€", True),  # 177 + 2 = 179 units
        ("a" * 178 + "€", False),  # 178 + 2 = 180 units
        ("[" * 89, True),  # 178 units
        ("[" * 90, False),
        ("я" * 69, True),
        ("я" * 70, False),
        ("😀" * 34 + "a", True),  # 68 + 1 = 69 code units
        ("😀" * 35, False),  # 70 code units
        ("Hello world!\n", True),
        ("", False),
        (None, False),
    ],
)
def test_text_length_counts_gsm_units_or_utf16_code_units(text, ok):
    if ok:
        assert check_text(text) == text
    else:
        with pytest.raises(InvalidMessage) as err:
            check_text(text)
        assert err.value.status == "invalid_text"


def test_extension_characters_count_two_and_emoji_forces_ucs2():
    assert text_units("a^{}\\[~]|€\f") == ("gsm", 1 + 2 * 10)
    assert text_units("hi 😀") == ("ucs2", 5)


@pytest.mark.parametrize(
    "callback, ok",
    [
        (None, True),
        ("http://your-site.com/response?param1=value1", True),
        ("https://a.example:8443/x", True),
        ("ftp://a.example/x", False),
        ("/relative/path", False),
        ("http://", False),
        ("https:///nohost", False),
        ("http://exa mple.com/", False),
        ("not a url", False),
        ("", False),
        (42, False),
        ("http://[::1", False),
    ],
)
def test_callback_is_an_absolute_http_url_with_a_host(callback, ok):
    if ok:
        assert check_callback(callback) == callback
    else:
        with pytest.raises(InvalidMessage) as err:
            check_callback(callback)
        assert err.value.status == "invalid_callback"


def _body_of_size(size: int) -> dict:
    body = {"api_key": "k", "api_secret": "s", "to": TO, "from": "F", "text": ""}
    body["from"] = "F" * (size - body_size(body) + 1)
    assert body_size(body) == size
    return body


def test_body_of_4096_bytes_passes_and_4097_is_large_request():
    check_size(_body_of_size(MAX_BODY_BYTES))
    with pytest.raises(InvalidMessage) as err:
        check_size(_body_of_size(MAX_BODY_BYTES + 1))
    assert err.value.status == "large_request"


def test_body_size_counts_utf8_bytes_unescaped():
    assert body_size({"t": "é"}) == len('{"t":"é"}'.encode())


@pytest.mark.parametrize("sender", ["", " ", "\t\n", None, 42])
def test_a_bad_sender_names_the_python_field_with_cosmos_status(sender):
    with pytest.raises(InvalidMessage) as err:
        validate_message(TO, sender, "hello")
    assert (err.value.status, err.value.field) == ("invalid_from", "sender")
    assert str(err.value).startswith("invalid_from: sender ")


def test_the_wire_name_of_the_sender_is_from():
    with pytest.raises(InvalidMessage) as err:
        check_from("", field="from")
    assert (err.value.status, err.value.field) == ("invalid_from", "from")
