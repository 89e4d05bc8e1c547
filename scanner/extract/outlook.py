"""Outlook .msg files: headers, body and attachments, walked as a container with extract-msg.

Owns turning one .msg into segments (subject, sender and recipients, body) and children (each
attachment's bytes; an embedded .msg re-exported as its own bytes, so the dispatcher walks it
like any other attachment). It fixes one thing extract-msg gets wrong: 8-bit string properties
are decoded with the code page the message declares (PR_MESSAGE_CODEPAGE, else
PR_INTERNET_CPID), not a Western default, so Big5 or Shift_JIS subjects stay readable. It must
not touch files or log, and always closes the message (extract-msg holds olefile handles).
Hazard: S/MIME-encrypted and rights-protected messages carry no readable body; they are
reported ``encrypted`` rather than passed as empty.
"""

from __future__ import annotations

import codecs
import io
import struct

import extract_msg
import olefile
from extract_msg.enums import AttachmentType, ErrorBehavior

from scanner.errors import EncryptedError, ExtractionError
from scanner.extract.budget import Budget
from scanner.extract.html import html_text
from scanner.extract.rtf import rtf_text
from scanner.extract.walk import Walk

_PR_MESSAGE_CODEPAGE = 0x3FFD
_PR_INTERNET_CPID = 0x3FDE
_PT_LONG = 0x0003
# Windows code page numbers whose Python codec is not simply "cpNNN".
_CODEPAGE_CODEC = {
    65001: "utf-8",
    20932: "euc_jp",
    51932: "euc_jp",
    50220: "iso2022_jp",
    50221: "iso2022_jp",
    50222: "iso2022_jp",
    936: "gbk",
    20127: "ascii",
    **{28590 + n: f"iso8859_{n}" for n in range(1, 16)},
}
_ERRORS = (
    ErrorBehavior.ATTACH_SUPPRESS_ALL | ErrorBehavior.RTFDE | ErrorBehavior.STANDARDS_VIOLATION
)


def _codec(codepage: int) -> str | None:
    if codepage in (1200, 1201):
        return None  # "Unicode": says nothing about the 8-bit properties
    name = _CODEPAGE_CODEC.get(codepage, f"cp{codepage}")
    try:
        codecs.lookup(name)
    except LookupError:
        return None
    return name


def declared_codec(data: bytes) -> str | None:
    """The codec of the message's 8-bit (PT_STRING8) string properties, from its top-level
    property stream (32-byte header, then 16-byte entries: type, id, flags, value); None for a
    Unicode message or when nothing usable is declared."""
    try:
        with olefile.OleFileIO(io.BytesIO(data)) as ole:
            if not ole.exists("__properties_version1.0"):
                return None
            if any(len(entry) == 1 and entry[0].endswith("001F") for entry in ole.listdir()):
                return None  # strings are UTF-16 (PT_UNICODE); no code page applies
            with ole.openstream("__properties_version1.0") as stream:
                props = stream.read(1024 * 1024)
    except Exception as exc:  # olefile fails with OSError/ValueError/struct.error on junk
        raise ExtractionError("corrupt") from exc
    found: dict[int, int] = {}
    for offset in range(32, len(props) - 15, 16):
        prop_type, prop_id, _flags, value = struct.unpack_from("<HHIi", props, offset)
        if prop_type == _PT_LONG and prop_id in (_PR_MESSAGE_CODEPAGE, _PR_INTERNET_CPID):
            found[prop_id] = value
    for prop_id in (_PR_MESSAGE_CODEPAGE, _PR_INTERNET_CPID):
        if prop_id in found:
            codec = _codec(found[prop_id])
            if codec is not None:
                return codec
    return None


def _attachment_name(attachment: object, index: int) -> str:
    for attribute in ("longFilename", "shortFilename", "displayName", "name"):
        value = getattr(attachment, attribute, None)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return f"attachment-{index}"


def _body_text(message: extract_msg.msg_classes.MessageBase, budget: Budget) -> str:
    """The plain body; else text of the HTML body; else of the RTF body."""
    try:
        body = message.body
    except Exception:  # a broken plain body still leaves HTML/RTF to try
        body = None
    if body and body.strip():
        return body
    try:
        html = message.htmlBody
    except Exception:  # extract-msg's RTF de-encapsulation can fail on odd RTF
        html = None
    if html:
        return html_text(html.decode("utf-8", errors="replace"))
    try:
        rtf = message.rtfBody
    except Exception:
        rtf = None
    if rtf:
        return rtf_text(rtf, budget)
    return ""


def walk_msg(walk: Walk, data: bytes) -> None:
    """Emit a .msg's subject, addresses and body as text and its attachments as children."""
    walk.budget.check_time()
    codec = declared_codec(data)
    try:
        message = extract_msg.openMsg(
            data,
            overrideEncoding=codec,
            errorBehavior=_ERRORS,
            delayAttachments=False,
        )
    except extract_msg.exceptions.UnsupportedMSGTypeError as exc:
        raise ExtractionError("unsupported-format") from exc
    except Exception as exc:  # extract-msg/olefile raise many types on damaged files
        raise ExtractionError("corrupt") from exc
    try:
        class_type = (getattr(message, "classType", "") or "").lower()
        # IPM.Note.SMIME is an opaque (encrypted) S/MIME message; IPM.Note.SMIME.MultipartSigned
        # is only signed and readable. Rights-managed mail (IRM) is encrypted too.
        if (
            class_type.startswith("ipm.note.smime") and "multipartsigned" not in class_type
        ) or class_type.startswith(("ipm.note.rpmsg", "ipm.note.secure")):
            raise EncryptedError()
        if not isinstance(message, extract_msg.msg_classes.MessageBase):
            raise ExtractionError("unsupported-format")
        walk.text(message.subject or "", sub="header:subject")
        for sub, value in (
            ("header:from", message.sender),
            ("header:to", message.to),
            ("header:cc", message.cc),
            ("header:bcc", message.bcc),
        ):
            walk.text(value or "", sub=sub)
        walk.text(_body_text(message, walk.budget), sub="body")
        for index, attachment in enumerate(message.attachments):
            walk.budget.check_time()
            name = _attachment_name(attachment, index)
            kind = getattr(attachment, "type", None)
            if kind in (AttachmentType.MSG, AttachmentType.SIGNED_EMBEDDED):
                embedded = getattr(attachment, "data", None)
                if isinstance(embedded, extract_msg.msg_classes.MSGFile):
                    try:
                        raw = embedded.exportBytes()
                    except Exception:  # one bad embedded message, not all
                        walk.unscannable("corrupt", sub=f"{name}.msg")
                        continue
                    walk.child(raw, name if name.lower().endswith(".msg") else f"{name}.msg")
                continue
            if kind == AttachmentType.WEB:
                continue  # a link to a cloud file: no bytes travel with the message
            if kind in (AttachmentType.BROKEN, AttachmentType.UNSUPPORTED, AttachmentType.UNKNOWN):
                walk.unscannable("corrupt", sub=name)
                continue
            payload = getattr(attachment, "data", None)
            if isinstance(payload, bytes):
                walk.child(payload, name, getattr(attachment, "mimetype", None))
            elif isinstance(payload, str):
                walk.child(payload.encode("utf-8"), name, "text/plain; charset=utf-8")
    except ExtractionError:
        raise
    except Exception as exc:  # property decoding inside extract-msg on a damaged message
        raise ExtractionError("corrupt") from exc
    finally:
        message.close()
