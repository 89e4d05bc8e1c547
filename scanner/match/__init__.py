"""Multi-pattern matching of normalized terms over normalized text (one automaton per ruleset)."""

from scanner.match.engine import Matcher, available_engines, build_matcher

__all__ = ["Matcher", "available_engines", "build_matcher"]
