"""Why a recipient is out of a rule's scope, in words a reviewer can check against the rule.

Owns the explanation only (the scope decision itself is ``scanner.policy.scope``'s): given the
rule as written, say which of its allowances the address misses. Must not decide anything: it
runs after the fact on stored hits. Hazard: the rule may have changed since the message was held,
so callers pass the spec of the version that judged the message when it is still stored.
"""

from __future__ import annotations

from scanner.rules.domains import to_alabel
from scanner.rules.model import RulesetSpec, RuleSpec

Reason = tuple[str, tuple[str, ...]]  # (i18n key, arguments)


def _domain(address: str) -> str:
    return address.rpartition("@")[2].strip().lower()


def _is_internal(domain: str, internal: tuple[str, ...]) -> bool:
    try:
        d = to_alabel(domain)
    except Exception:  # a broken recipient domain is simply not internal
        return False
    for i in internal:
        try:
            a = to_alabel(i)
        except Exception:
            continue
        if d == a or d.endswith("." + a):
            return True
    return False


def explain(rule: RuleSpec | None, spec: RulesetSpec | None, address: str) -> list[Reason]:
    """Reasons (i18n keys with arguments) why ``address`` is outside ``rule``'s scope."""
    if rule is None or spec is None:
        return [("reason_unknown_rule", ())]
    if rule.recipient_domains and not rule.terms:
        return [("reason_recipient_domain", ())]
    domain = _domain(address)
    allowed = [*rule.allow.domains, *rule.allow.addresses, *(f"@{g}" for g in rule.allow.groups)]
    reasons: list[Reason] = [("reason_domain", (domain,))]
    if _is_internal(domain, spec.settings.internal_domains) and not rule.allow.internal:
        reasons.append(("reason_internal", ()))
    reasons.append(("reason_allowed", (", ".join(allowed),)) if allowed else ("reason_nothing", ()))
    return reasons
