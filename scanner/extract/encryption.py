"""Cheap checks for password-protected Office files, before any extractor tries to read them.

Owns the answer to "is this Office file encrypted?" for both families: OOXML, which when
encrypted stops being a zip and becomes an OLE container holding ``EncryptionInfo`` and
``EncryptedPackage`` streams, and the legacy binary formats (.doc/.xls/.ppt), whose encryption is
a flag or a record inside their own streams (read here with msoffcrypto-tool, which knows each).
It must never try a password, decrypt, log or touch a file. Hazard: the input is hostile OLE;
every third-party failure is wrapped so that only ``ExtractionError`` escapes.
"""

from __future__ import annotations

import io

import msoffcrypto
import olefile

from scanner.errors import EncryptedError, ExtractionError

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def is_ole(data: bytes) -> bool:
    """True when ``data`` is an OLE2 compound file (legacy Office, .msg, encrypted OOXML)."""
    return data[:8] == OLE_MAGIC


def raise_if_encrypted_ole(data: bytes) -> None:
    """Raise ``EncryptedError`` for an OLE container that wraps an encrypted OOXML package.

    Anything else is left alone: a zip passes straight through, and an OLE file that is not an
    encrypted package will fail as corrupt in the caller.
    """
    if not is_ole(data):
        return
    try:
        with olefile.OleFileIO(io.BytesIO(data)) as ole:
            if ole.exists("EncryptedPackage") or ole.exists("EncryptionInfo"):
                raise EncryptedError()
    except EncryptedError:
        raise
    except Exception as exc:  # olefile raises bare OSError/ValueError/struct.error on junk
        raise ExtractionError("corrupt") from exc


def raise_if_encrypted_legacy(data: bytes) -> None:
    """Raise ``EncryptedError`` when a legacy .doc/.xls/.ppt says it is password-protected.

    Files msoffcrypto-tool does not recognise are not judged here; the format reader decides.
    """
    raise_if_encrypted_ole(data)
    try:
        encrypted = bool(msoffcrypto.OfficeFile(io.BytesIO(data)).is_encrypted())
    except Exception:  # unrecognised or damaged: the reader reports it precisely
        return
    if encrypted:
        raise EncryptedError()
