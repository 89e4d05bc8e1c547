"""ZIP archives (nested to any depth the limits allow): every member becomes a child part.

Each member is checked against the budget *before* it is inflated (entry count, declared size,
compression ratio, total bytes) and zipfile never reads past a member's declared size, so a zip
bomb costs nothing but its central directory. Member names written by Japanese Windows without
the UTF-8 flag are cp932 bytes that zipfile shows as cp437 mojibake; they are recovered.
Encrypted members are unscannable (``encrypted``), never skipped.
"""

from __future__ import annotations

import io
import zipfile

from scanner.errors import ExtractionError, LimitExceeded
from scanner.extract.walk import Walk

_UTF8_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1


def member_name(info: zipfile.ZipInfo) -> str:
    """The member's path as its author saw it."""
    if info.flag_bits & _UTF8_FLAG:
        return info.filename
    try:
        raw = info.filename.encode("cp437")
    except UnicodeEncodeError:
        return info.filename
    for codec in ("utf-8", "cp932"):
        try:
            return raw.decode(codec)
        except UnicodeDecodeError:
            continue
    return info.filename


def open_zip(data: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ExtractionError("corrupt") from exc


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, walk: Walk) -> bytes:
    """Inflate one member after charging its declared size; raises on limits and encryption."""
    if info.flag_bits & _ENCRYPTED_FLAG:
        raise ExtractionError("encrypted")
    walk.budget.check_ratio(info.compress_size, info.file_size)
    walk.budget.charge_decompressed(info.file_size)
    try:
        return zf.read(info)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise ExtractionError("corrupt") from exc
    except RuntimeError as exc:  # zipfile raises RuntimeError for a password it lacks
        raise ExtractionError("encrypted") from exc


def walk_zip(walk: Walk, data: bytes) -> None:
    """Open every member of a zip archive as a child of ``walk``."""
    with open_zip(data) as zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        walk.budget.check_entries(len(infos))
        for info in infos:
            name = member_name(info)
            member = walk.below(name)
            try:
                walk.budget.check_time()
                payload = read_member(zf, info, member)
            except LimitExceeded as exc:
                member.unscannable(exc.reason)
                if exc.reason in ("max_decompressed_bytes", "max_scan_seconds"):
                    # Nothing after this member can be read either; say so once per archive.
                    return
                continue
            except ExtractionError as exc:
                member.unscannable(exc.reason)
                continue
            walk.dispatch(member, payload, name, None)
