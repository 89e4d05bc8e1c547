"""Multi-pattern matching of normalized terms over normalized text (one automaton per ruleset)."""
