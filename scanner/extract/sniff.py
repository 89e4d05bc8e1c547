"""Decide what a part really is, from its bytes first and its name and label second.

Senders (and attackers) label parts wrongly: a zip sent as ``application/octet-stream``, a
``.txt`` that is a docx, an ``.eml`` without ``message/rfc822``. Magic bytes decide where they
exist; the extension and the Content-Type decide only between formats that have none (text,
HTML, CSV). Must not read more than the headers of containers (a zip's central directory, an OLE
directory); the format modules do the real work.
"""

from __future__ import annotations

import enum
import io
import re
import zipfile

import olefile


class Kind(enum.Enum):
    TEXT = "text"
    HTML = "html"
    EML = "eml"
    ZIP = "zip"
    DOCX = "docx"
    XLSX = "xlsx"
    PPTX = "pptx"
    ODF = "odf"
    PDF = "pdf"
    RTF = "rtf"
    DOC = "doc"
    XLS = "xls"
    PPT = "ppt"
    MSG = "msg"
    TNEF = "tnef"
    OFFICE_ENCRYPTED = "office-encrypted"
    MEDIA = "media"
    UNKNOWN = "unknown"


_MEDIA_MAGIC: tuple[bytes, ...] = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"ID3",
    b"OggS",
    b"fLaC",
    b"\x1aE\xdf\xa3",  # Matroska / WebM
)
_MEDIA_EXT = {
    "png", "jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp", "heic", "heif", "ico", "svgz",
    "mp3", "m4a", "aac", "wav", "ogg", "oga", "flac", "opus", "wma", "amr",
    "mp4", "m4v", "mov", "avi", "mkv", "webm", "wmv", "3gp", "mpg", "mpeg",
}
_TEXT_EXT = {
    "txt", "csv", "tsv", "text", "md", "log", "json", "xml", "yaml", "yml", "ini", "cfg",
    "conf", "vcf", "ics", "sql", "py", "js", "ts", "java", "c", "h", "cpp", "cs", "go", "rb",
    "sh", "bat", "ps1", "properties", "toml", "tex", "srt",
}
_HTML_EXT = {"html", "htm", "xhtml", "mht", "mhtml"}
_ODF_MIMETYPES = b"application/vnd.oasis.opendocument."
# An RFC 5322 header block: a few "Name: value" lines with at least one mail header name.
_MAIL_HEADERS = re.compile(
    rb"^(?:received|from|to|subject|date|message-id|mime-version|return-path|"
    rb"delivered-to|x-[a-z0-9-]+|content-type|reply-to|cc):",
    re.IGNORECASE | re.MULTILINE,
)


def extension(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[-1].lower() if "." in base else ""


def _zip_kind(data: bytes) -> Kind:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
            if "mimetype" in names:
                info = zf.getinfo("mimetype")
                if info.file_size < 200 and zf.read(info).startswith(_ODF_MIMETYPES):
                    return Kind.ODF
            if "[Content_Types].xml" in names:
                if "word/document.xml" in names:
                    return Kind.DOCX
                if "xl/workbook.xml" in names:
                    return Kind.XLSX
                if "ppt/presentation.xml" in names:
                    return Kind.PPTX
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, NotImplementedError):
        pass
    return Kind.ZIP


def _ole_kind(data: bytes) -> Kind:
    try:
        with olefile.OleFileIO(data) as ole:
            streams = {"/".join(entry) for entry in ole.listdir(streams=True, storages=True)}
    except Exception:
        # olefile raises bare OSError/struct errors/IndexError on damaged files.
        return Kind.UNKNOWN
    top = {s.split("/", 1)[0] for s in streams}
    if "EncryptionInfo" in top or "EncryptedPackage" in top:
        return Kind.OFFICE_ENCRYPTED
    if "WordDocument" in top:
        return Kind.DOC
    if "Workbook" in top or "Book" in top:
        return Kind.XLS
    if "PowerPoint Document" in top:
        return Kind.PPT
    if any(name.startswith("__substg1.0_") for name in top):
        return Kind.MSG
    return Kind.UNKNOWN


def sniff(data: bytes, name: str, content_type: str | None) -> Kind:
    """The real kind of a part; ``content_type`` is the bare MIME type, lower-case, or None."""
    head = data[:1024]
    ext = extension(name)
    ctype = (content_type or "").lower()
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return _zip_kind(data)
    if b"%PDF-" in head:
        return Kind.PDF
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return _ole_kind(data)
    if head.lstrip().startswith(b"{\\rtf"):
        return Kind.RTF
    if head.startswith(b"\x78\x9f\x3e\x22"):
        return Kind.TNEF
    if head.startswith(_MEDIA_MAGIC) or (head[4:8] == b"ftyp") or (
        head.startswith(b"RIFF") and head[8:12] in (b"WAVE", b"AVI ", b"WEBP")
    ):
        return Kind.MEDIA
    if ctype.startswith(("image/", "audio/", "video/")) or ext in _MEDIA_EXT:
        return Kind.MEDIA if not ctype.startswith("image/svg") else Kind.HTML
    if (ctype in ("message/rfc822", "message/global") or ext in ("eml", "mht")) and (
        ext != "mht" or _MAIL_HEADERS.search(head)
    ):
        return Kind.EML
    if ctype in ("text/html", "application/xhtml+xml", "image/svg+xml") or ext in _HTML_EXT:
        return Kind.HTML
    if ctype.startswith("text/") or ext in _TEXT_EXT:
        return Kind.TEXT
    if ext == "dat" and ctype == "application/ms-tnef":
        return Kind.TNEF
    if len(_MAIL_HEADERS.findall(head)) >= 2 and head[:1].isalpha():
        return Kind.EML
    if b"<html" in head.lower() or b"<!doctype html" in head.lower():
        return Kind.HTML
    from scanner.extract.text import looks_textual

    if looks_textual(data):
        return Kind.TEXT
    return Kind.UNKNOWN
