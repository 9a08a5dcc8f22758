"""Run every rule over a stack's objects and report what fails, what is waived and why.

>>> report = evaluate(objects, production=False, exemptions=config.policy_exemptions)
>>> print(format_report(report))
>>> if report.failed: ...
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..exemptions import Exemption
from ..profiles import DEFAULT_PROFILE, SecurityProfile
from .index import StackIndex
from .objects import K8sObject, kind_of, name_of, namespace_of
from .rules import RULES, ObjectRule, Rule, Severity, StackRule


@dataclass(frozen=True, order=True)
class Violation:
    """One problem one rule found on one object."""

    rule_id: str
    """Id of the rule, e.g. ``HARD-001``."""
    kind: str
    """Kind of the object."""
    namespace: str
    """Namespace of the object; empty when cluster-scoped."""
    name: str
    """``metadata.name`` of the object."""
    problem: str
    """What is wrong, starting with the field path it is about."""
    severity: Severity
    """``mandatory`` (fails the render and the preview) or ``advisory``."""
    title: str
    """The rule's title."""
    fix: str
    """What to change, from the rule."""

    @property
    def resource(self) -> str:
        """``Kind/namespace/name`` (``Kind/name`` when cluster-scoped)."""
        if self.namespace:
            return f"{self.kind}/{self.namespace}/{self.name}"
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class ExemptedViolation:
    """A violation waived by an exemption, kept in the report with its reason."""

    violation: Violation
    """The violation waived."""
    reason: str
    """The exemption's reason, from the stack file."""
    entry: int | None = None
    """Index of the exemption in the list given to :func:`evaluate` (``policyExemptions[entry]``);
    ``None`` when unknown. Default: ``None``."""


@dataclass(frozen=True)
class Report:
    """Outcome of :func:`evaluate`; every tuple is sorted for deterministic output."""

    violations: tuple[Violation, ...]
    """Violations no exemption covers, sorted."""
    exempted: tuple[ExemptedViolation, ...]
    """Violations an exemption waived, with its reason."""
    unused_exemptions: tuple[Exemption, ...]
    """Exemptions that matched no finding: stale entries to remove from the stack file."""
    production: bool
    """Whether the production-only rules ran."""

    @property
    def mandatory(self) -> tuple[Violation, ...]:
        """The violations of mandatory rules: any of them fails the stack."""
        return tuple(v for v in self.violations if v.severity == "mandatory")

    @property
    def advisory(self) -> tuple[Violation, ...]:
        """The violations of advisory rules, reported only."""
        return tuple(v for v in self.violations if v.severity == "advisory")

    @property
    def failed(self) -> bool:
        """True iff a mandatory violation is left after exemptions."""
        return bool(self.mandatory)


def _violation(rule: Rule, obj: K8sObject, problem: str) -> Violation:
    return Violation(
        rule_id=rule.id,
        kind=kind_of(obj),
        namespace=namespace_of(obj),
        name=name_of(obj),
        problem=problem,
        severity=rule.severity,
        title=rule.title,
        fix=rule.fix,
    )


def run_rule(rule: Rule, objs: Sequence[K8sObject]) -> list[Violation]:
    """Findings of one rule over ``objs`` (production gating is the caller's business).

    A stack rule gets ``objs`` as a :class:`~hardened_k8s_rules.policy.index.StackIndex`: pass one
    to share its lookups between rules, as :func:`evaluate` does; any other sequence gets an
    index of its own.
    """
    if isinstance(rule, ObjectRule):
        return [
            _violation(rule, obj, problem)
            for obj in objs
            if kind_of(obj) in rule.kinds
            for problem in rule.check(obj)
        ]
    if isinstance(rule, StackRule):
        stack = objs if isinstance(objs, StackIndex) else StackIndex(objs)
        return [_violation(rule, obj, problem) for obj, problem in rule.check(stack)]
    raise TypeError(f"{rule.id}: unknown rule type {type(rule).__name__}")


def evaluate(
    objs: Sequence[K8sObject],
    *,
    production: bool,
    exemptions: Iterable[Exemption] = (),
    rules: Sequence[Rule] = RULES,
    security_profile: SecurityProfile = DEFAULT_PROFILE,
) -> Report:
    """Run ``rules`` (default: all) over ``objs`` and apply ``exemptions`` (default: none).

    Production-only rules run only when ``production`` is true; a rule runs only for the
    security profiles it names (``security_profile``, default ``restricted``). The stack
    rules share one :class:`~hardened_k8s_rules.policy.index.StackIndex` of ``objs``, so the whole
    evaluation grows linearly with the number of objects.
    """
    stack = StackIndex(objs)
    exemption_list = list(exemptions)
    used: set[int] = set()
    violations: list[Violation] = []
    exempted: list[ExemptedViolation] = []
    for rule in rules:
        if (rule.production_only and not production) or security_profile not in rule.profiles:
            continue
        for violation in run_rule(rule, stack):
            match = next(
                (
                    (i, e)
                    for i, e in enumerate(exemption_list)
                    if e.matches(violation.rule_id, violation.kind, violation.name, violation.namespace)
                ),
                None,
            )
            if match is None:
                violations.append(violation)
            else:
                used.add(match[0])
                exempted.append(ExemptedViolation(violation, match[1].reason, match[0]))
    return Report(
        violations=tuple(sorted(set(violations))),
        exempted=tuple(sorted(set(exempted), key=lambda e: e.violation)),
        unused_exemptions=tuple(e for i, e in enumerate(exemption_list) if i not in used),
        production=production,
    )


def format_report(report: Report) -> str:
    """The report for a terminal: mandatory first, then advisory, exempted, unused."""
    lines: list[str] = []
    for heading, items in (
        ("MANDATORY", report.mandatory),
        ("ADVISORY", report.advisory),
    ):
        if not items:
            continue
        lines.append(f"{heading} ({len(items)})")
        for v in items:
            lines.append(f"  [{v.rule_id}] {v.resource}: {v.problem}")
            lines.append(f"      {v.title}. Fix: {v.fix}")
    if report.exempted:
        lines.append(f"EXEMPTED ({len(report.exempted)})")
        for e in report.exempted:
            v = e.violation
            lines.append(f"  [{v.rule_id}] {v.resource}: {v.problem}")
            entry = "" if e.entry is None else f" (policyExemptions[{e.entry}])"
            lines.append(f"      reason{entry}: {e.reason}")
    if report.unused_exemptions:
        lines.append(f"UNUSED EXEMPTIONS ({len(report.unused_exemptions)})")
        for ex in report.unused_exemptions:
            where = f" in namespace {ex.namespace}" if ex.namespace else ""
            lines.append(f"  [{ex.rule}] {ex.resource}{where}: matched nothing; remove it")
    stack = "production" if report.production else "non-production"
    verdict = "FAILED" if report.failed else "passed"
    lines.append(
        f"policy {verdict} ({stack}): {len(report.mandatory)} mandatory, "
        f"{len(report.advisory)} advisory, {len(report.exempted)} exempted"
    )
    return "\n".join(lines)
