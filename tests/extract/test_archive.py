"""ZIP containers: nesting, locations, Japanese member names, bombs and encryption."""

from __future__ import annotations

import io
import struct
import zipfile

import pytest

from scanner.extract.mime import extract_message
from scanner.limits import Limits
from tests.extract.factories import make_message, make_zip


def _extract(attachment: bytes, name: str = "docs.zip", limits: Limits | None = None):  # type: ignore[no-untyped-def]
    raw = make_message(attachments=((name, attachment, "application/zip"),))
    return extract_message(raw, limits or Limits())


def test_nested_zip_locations() -> None:
    """Members of nested zips are located with the container path joined by '/'."""
    inner = make_zip({"q3.txt": b"inner secret"})
    outer = make_zip({"plan/inner.zip": inner, "readme.txt": b"top"})
    out = _extract(outer)
    locations = {s.location: s.text for s in out.segments}
    assert locations["attachment:docs.zip/plan/inner.zip/q3.txt"] == "inner secret"
    assert locations["attachment:docs.zip/readme.txt"] == "top"
    assert out.unscannable == []


def test_zip_sent_as_octet_stream_is_opened() -> None:
    """A zip labelled application/octet-stream with a misleading name is still opened."""
    raw = make_message(
        attachments=(("data.bin", make_zip({"a.txt": b"found"}), "application/octet-stream"),)
    )
    out = extract_message(raw, Limits())
    assert [s.location for s in out.segments if s.text == "found"] == ["attachment:data.bin/a.txt"]


def test_cp932_member_names_recovered() -> None:
    """Member names written in cp932 without the UTF-8 flag (Japanese Windows) are decoded."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("x.txt")
        zf.writestr(info, b"content")
    data = bytearray(buf.getvalue())
    # Rewrite the 5-byte name "x.txt" in both headers by a 5-byte cp932 name ("資料x").
    cp932_name = "資料x".encode("cp932")
    assert len(cp932_name) == 5
    data = bytearray(bytes(data).replace(b"x.txt", cp932_name))
    out = _extract(bytes(data))
    member = [s.text for s in out.segments if s.location == "attachment:docs.zip/資料x"]
    assert member == ["資料x", "content"]  # the decoded name is scanned too, then the content


def test_zip_bomb_ratio() -> None:
    """A member inflating beyond the ratio limit is unscannable by that limit's name."""
    bomb = make_zip({"bomb.txt": b"\0" * (50 * 1024 * 1024)})
    out = _extract(bomb)
    assert [(u.location, u.reason) for u in out.unscannable] == [
        ("attachment:docs.zip/bomb.txt", "max_compression_ratio")
    ]


def test_total_decompressed_budget() -> None:
    """Many modest members together stop at max_decompressed_bytes."""
    members = {f"m{i}.txt": bytes(range(256)) * 4096 for i in range(10)}  # 1 MiB each
    out = _extract(make_zip(members), limits=Limits(max_decompressed_bytes=3 * 1024 * 1024))
    assert ("attachment:docs.zip/m3.txt", "max_decompressed_bytes") in [
        (u.location, u.reason) for u in out.unscannable
    ]


def test_too_many_entries() -> None:
    """An archive with more entries than allowed is unscannable as a whole."""
    out = _extract(
        make_zip({f"f{i}": b"x" for i in range(50)}), limits=Limits(max_archive_entries=10)
    )
    assert [(u.location, u.reason) for u in out.unscannable] == [
        ("attachment:docs.zip", "max_archive_entries")
    ]


def test_archive_depth() -> None:
    """Zips nested deeper than max_archive_depth stop with that limit's name."""
    data = make_zip({"leaf.txt": b"deep"})
    for level in range(10):
        data = make_zip({f"l{level}.zip": data})
    out = _extract(data, limits=Limits(max_archive_depth=3))
    assert [u.reason for u in out.unscannable] == ["max_archive_depth"]


def test_encrypted_member() -> None:
    """A member with the encryption flag set is unscannable as 'encrypted'."""
    data = bytearray(make_zip({"secret.txt": b"hidden"}, level=zipfile.ZIP_STORED))
    # Set bit 0 of the general purpose flags in the local header and the central directory.
    local = data.find(b"PK\x03\x04")
    central = data.find(b"PK\x01\x02")
    for offset in (local + 6, central + 8):
        (flags,) = struct.unpack_from("<H", data, offset)
        struct.pack_into("<H", data, offset, flags | 1)
    out = _extract(bytes(data))
    assert [(u.location, u.reason) for u in out.unscannable] == [
        ("attachment:docs.zip/secret.txt", "encrypted")
    ]


@pytest.mark.parametrize("data", [b"PK\x03\x04garbage", b"PK\x05\x06" + b"\0" * 5])
def test_corrupt_zip(data: bytes) -> None:
    """A truncated or garbage zip is unscannable as corrupt, not an exception."""
    out = _extract(data)
    assert [u.reason for u in out.unscannable] == ["corrupt"]
