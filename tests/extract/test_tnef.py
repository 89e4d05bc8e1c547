"""TNEF (winmail.dat) walking: subject, body and attachments from a stream built per the spec."""

from __future__ import annotations

import struct

import pytest

from scanner.errors import ExtractionError
from scanner.extract.budget import Budget
from scanner.extract.tnef import walk_tnef
from scanner.extract.walk import Collector, Walk
from scanner.limits import Limits

_SIGNATURE = 0x223E9F78
_MESSAGE, _ATTACHMENT = 1, 2
# [MS-OXTNEF] attribute ids: (type << 16) | id
_ATT_TNEF_VERSION = 0x00089006
_ATT_OEM_CODEPAGE = 0x00069007
_ATT_SUBJECT = 0x00018004
_ATT_BODY = 0x0002800C
_ATT_ATTACH_REND_DATA = 0x00069002
_ATT_ATTACH_TITLE = 0x00018010
_ATT_ATTACH_DATA = 0x0006800F


def _attribute(level: int, attribute: int, data: bytes) -> bytes:
    checksum = sum(data) & 0xFFFF
    return struct.pack("<BII", level, attribute, len(data)) + data + struct.pack("<H", checksum)


def make_tnef(subject: str, body: str, attachments: dict[str, bytes]) -> bytes:
    """A minimal winmail.dat: version, code page, subject, body, then each attachment."""
    parts = [
        struct.pack("<IH", _SIGNATURE, 0x0001),
        _attribute(_MESSAGE, _ATT_TNEF_VERSION, struct.pack("<I", 0x00010000)),
        _attribute(_MESSAGE, _ATT_OEM_CODEPAGE, struct.pack("<II", 1252, 0)),
        _attribute(_MESSAGE, _ATT_SUBJECT, subject.encode("cp1252") + b"\x00"),
        _attribute(_MESSAGE, _ATT_BODY, body.encode("cp1252")),
    ]
    for name, data in attachments.items():
        parts.append(_attribute(_ATTACHMENT, _ATT_ATTACH_REND_DATA, b"\x01\x00" + b"\x00" * 12))
        parts.append(_attribute(_ATTACHMENT, _ATT_ATTACH_TITLE, name.encode() + b"\x00"))
        parts.append(_attribute(_ATTACHMENT, _ATT_ATTACH_DATA, data))
    return b"".join(parts)


def _walk(data: bytes) -> tuple[Collector, list[tuple[str, bytes]]]:
    children: list[tuple[str, bytes]] = []

    def record(walk: Walk, payload: bytes, name: str, content_type: str | None) -> None:
        children.append((walk.location, payload))

    out = Collector()
    walk = Walk("attachment:winmail.dat", 1, Budget(Limits()), out, record)
    walk_tnef(walk, data)
    return out, children


def test_subject_body_and_attachments() -> None:
    """Subject and body become text segments; each attachment is handed on with its bytes."""
    data = make_tnef(
        "Quote for Project Falcon",
        "Price list attached. Café.",
        {"prices.csv": b"item,price\nwidget,3\n", "notes.txt": b"call back"},
    )
    out, children = _walk(data)
    texts = {segment.location: segment.text for segment in out.segments}
    assert texts["attachment:winmail.dat/header:subject"] == "Quote for Project Falcon"
    assert "Price list attached. Café." in texts["attachment:winmail.dat/body"]
    assert children == [
        ("attachment:winmail.dat/prices.csv", b"item,price\nwidget,3\n"),
        ("attachment:winmail.dat/notes.txt", b"call back"),
    ]


@pytest.mark.parametrize(
    "data",
    [
        b"not tnef at all",
        # A subject attribute (string type) claiming 2 GiB, with 30 bytes behind it.
        struct.pack("<IH", _SIGNATURE, 1) + b"\x01\x04\x80\x01\x00\xff\xff\xff\x7f" + b"abc" * 10,
    ],
    ids=["bad-signature", "lying-length"],
)
def test_corrupt_tnef_is_corrupt(data: bytes) -> None:
    """A wrong signature or an attribute that lies about its length raise "corrupt"."""
    with pytest.raises(ExtractionError) as caught:
        _walk(data)
    assert caught.value.reason == "corrupt"


def test_truncated_tnef_yields_what_is_there() -> None:
    """A stream cut short after its header gives no text and no error: nothing was lost."""
    out, children = _walk(make_tnef("s", "b", {"a.txt": b"x"})[:40])
    assert out.segments == []
    assert children == []
