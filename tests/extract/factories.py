"""Builders for test messages: real MIME made with the standard library, written inline."""

from __future__ import annotations

import io
import zipfile
from email.message import EmailMessage
from email.policy import SMTP


def make_message(
    *,
    subject: str = "Hello",
    body: str | None = "Hello there.",
    html: str | None = None,
    sender: str = "Tanaka <tanaka@example.co.jp>",
    to: str = "someone@acme.example",
    charset: str = "utf-8",
    cte: str | None = None,
    attachments: tuple[tuple[str, bytes, str], ...] = (),
) -> bytes:
    """A message with optional HTML alternative and (name, data, mime type) attachments."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    if charset.lower().startswith("utf-16"):
        # The email package cannot line-wrap UTF-16 text; real mailers send it base64-encoded.
        if body is not None:
            msg.set_content(body.encode(charset), maintype="text", subtype="plain", cte="base64")
            msg.set_param("charset", charset)
            body = None
        if html is not None:
            target = msg if not msg.get_content_type().startswith("text/plain") else None
            if target is None:
                msg.make_alternative()
                alt = EmailMessage()
                alt.set_content(html.encode(charset), maintype="text", subtype="html",
                                cte="base64")
                alt.set_param("charset", charset)
                msg.attach(alt)
            else:
                msg.set_content(html.encode(charset), maintype="text", subtype="html",
                                cte="base64")
                msg.set_param("charset", charset)
            html = None
    if body is not None:
        if cte is None:
            msg.set_content(body, charset=charset)
        else:
            msg.set_content(body, charset=charset, cte=cte)
    if html is not None:
        if body is None:
            msg.set_content(html, subtype="html", charset=charset)
        else:
            msg.add_alternative(html, subtype="html", charset=charset)
    for name, data, mime in attachments:
        maintype, subtype = mime.split("/", 1)
        if maintype == "message":
            msg.add_attachment(data, maintype="application", subtype="octet-stream",
                               filename=name)
            part = msg.get_payload()[-1]
            part.replace_header("Content-Type", f'message/rfc822; name="{name}"')
            del part["Content-Transfer-Encoding"]
            part.set_payload(data)
            part["Content-Transfer-Encoding"] = "8bit"
        else:
            msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes(policy=SMTP)


def make_zip(members: dict[str, bytes], *, level: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=level) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()
