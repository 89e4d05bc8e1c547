"""Text normalization for matching, with a way back to original offsets.

Rules: NFKC, case folding, every whitespace run becomes one space, a line break (with any
surrounding whitespace) between two CJK characters is removed. ``Normalized.original_span`` maps a
span of the normalized text back to the original so a reviewer sees the real context.
"""
