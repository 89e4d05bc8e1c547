"""Extraction: raw message bytes → text segments with locations, plus unscannable parts.

``mime`` walks the message; ``dispatch`` sniffs each part's real type and hands it to one module
per format (``text``, ``html``, ``ooxml``, ``odf``, ``pdf``, ``rtf``, ``legacy``, ``outlook``,
``archive``, ``tnef``). Nothing here raises on bad input: failures become ``Unscannable``.
"""
