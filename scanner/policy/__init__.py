"""Policy: which recipients are outside a rule's scope (``scope``) and what to do (``decide``)."""
