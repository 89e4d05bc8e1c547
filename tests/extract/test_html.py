"""HTML to visible text."""

from __future__ import annotations

import pytest

from scanner.extract.html import html_bytes_text, html_text


@pytest.mark.parametrize(
    ("html", "present", "absent"),
    [
        ("<p>Project <b>Fal</b>con</p>", "Project Falcon", None),
        ("<p>Project</p><p>Falcon</p>", "Project\n", "ProjectFalcon"),
        ("<td>A</td><td>B</td>", "A", "AB"),
        ("a &amp; b &#x30D5;&#12449;", "a & b ファ", None),
        ("<script>var secret='Falcon'</script>visible", "visible", "Falcon"),
        ("<style>.Falcon{}</style>x", "x", "Falcon"),
        ("<div style='display:none'>hidden Falcon</div>", "hidden Falcon", None),
        ("<html><head><title>Title here</title></head><body>b</body></html>", "Title here", None),
        ("unclosed <b>tags <i>everywhere", "unclosed tags everywhere", None),
    ],
)
def test_visible_text(html: str, present: str, absent: str | None) -> None:
    """Tags go, entities decode, scripts and styles are dropped, blocks stay separate."""
    text = html_text(html)
    assert present in text
    if absent is not None:
        assert absent not in text


def test_meta_charset_is_honoured() -> None:
    """A <meta charset> in unlabelled HTML bytes picks the decoding."""
    data = '<html><head><meta charset="shift_jis"></head><body>ファルコン</body></html>'
    assert "ファルコン" in html_bytes_text(data.encode("cp932"), None)
