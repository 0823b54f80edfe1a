"""The claims ledger: a chapter states a claim from the literature, the rule that will decide it, and
records the verdict that its own measurement gives.

Before measuring, a chapter states the claim and its decision rule::

    claim = Claim("plain_deeper_trains_worse",
                  "A deeper plain net trains worse than a shallower one.",
                  source="he2016deep",
                  rule=holds_if("deepest ÷ shallowest plain loss", at_least(2)))

after measuring, it records the evidence; the rule computes the verdict::

    record(claim, {"deepest ÷ shallowest plain loss": 187.0});

A verdict is one of three values (:class:`Verdict`) and is never typed by the chapter. ``record``
glues the claim under ``claim_<id>_statement``, ``_source``, ``_rule``, ``_verdict`` and
``_evidence`` for the ledger page (``book/claims.md``) and shows it in the notebook, where the
ledger's glue does not render.
"""
from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from .chapter import glue

COMMON_ACCOUNT = "common account"
FIELDS = ("statement", "source", "rule", "verdict", "evidence")  # glued as claim_<id>_<field>
_CLAIM_ID = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")
_BIBTEX_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_:.-]*")


class Verdict(str, Enum):
    """What a decision rule concludes about a claim, in this book's setting."""

    HOLDS = "holds"
    HOLDS_WITH_CONDITION = "holds with a condition"
    DOES_NOT_HOLD = "does not hold in this setting"

    @classmethod
    def _missing_(cls, value: object) -> Verdict:
        allowed = ", ".join(repr(v.value) for v in cls)
        raise ValueError(f"verdict must be one of {allowed}; got {value!r}")


def _text(name: str, value: Any, max_length: int = 300) -> str:
    """``value`` if it is a non-empty one-line string of at most ``max_length`` characters."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__} {value!r}")
    if not value.strip() or "\n" in value or len(value) > max_length:
        raise ValueError(f"{name} must be one non-empty line of at most {max_length} characters, got {value!r}")
    return value.strip()


def _number(name: str, value: Any) -> float:
    """``value`` as a float if it is a real number that is not NaN (a 0-d NumPy or torch value too)."""
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise TypeError(f"{name} must be a real number (not NaN or bool), got {type(value).__name__} {value!r}")
    return float(value)


@dataclass(frozen=True)
class Finding:
    """A verdict and, for "holds with a condition", the condition under which the claim holds."""

    verdict: Verdict
    condition: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.verdict, (str, Verdict)):
            raise TypeError(f"verdict must be a Verdict, got {type(self.verdict).__name__} {self.verdict!r}")
        object.__setattr__(self, "verdict", Verdict(self.verdict))
        needs_condition = self.verdict is Verdict.HOLDS_WITH_CONDITION
        if needs_condition:
            object.__setattr__(self, "condition", _text("condition", self.condition))
        elif self.condition is not None:
            raise ValueError(f"condition is named only for {Verdict.HOLDS_WITH_CONDITION.value!r}, "
                             f"not for {self.verdict.value!r}; got {self.condition!r}")

    def __str__(self) -> str:
        return self.verdict.value + (f": {self.condition}" if self.condition else "")


@dataclass(frozen=True)
class Comparison:
    """One number against a threshold: ``at_least(2)(x)`` is ``x >= 2``; its ``text`` reads ``≥ 2``."""

    operator: str
    threshold: float

    _TESTS = {"≥": lambda x, t: x >= t, "≤": lambda x, t: x <= t, ">": lambda x, t: x > t, "<": lambda x, t: x < t}

    def __post_init__(self) -> None:
        if self.operator not in self._TESTS:
            raise ValueError(f"operator must be one of {', '.join(self._TESTS)}; got {self.operator!r}")
        threshold = _number("threshold", self.threshold)
        if math.isinf(threshold):
            raise ValueError(f"threshold must be finite, got {threshold}")
        object.__setattr__(self, "threshold", threshold)

    @property
    def text(self) -> str:
        return f"{self.operator} {self.threshold:g}"

    def __call__(self, value: float) -> bool:
        return self._TESTS[self.operator](value, self.threshold)


def at_least(threshold: float) -> Comparison:
    """The comparison ``x ≥ threshold``."""
    return Comparison("≥", threshold)


def at_most(threshold: float) -> Comparison:
    """The comparison ``x ≤ threshold``."""
    return Comparison("≤", threshold)


def above(threshold: float) -> Comparison:
    """The comparison ``x > threshold``."""
    return Comparison(">", threshold)


def below(threshold: float) -> Comparison:
    """The comparison ``x < threshold``."""
    return Comparison("<", threshold)


@dataclass(frozen=True)
class Rule:
    """A decision rule: its ``text`` (printed on the ledger), the evidence labels it ``reads``, and
    ``decide``, which maps the evidence (label → number) to a :class:`Finding`."""

    text: str
    decide: Callable[[Mapping[str, float]], Finding]
    reads: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", _text("text", self.text, max_length=600))
        if not callable(self.decide):
            raise TypeError(f"decide must be callable (evidence -> Finding), got {type(self.decide).__name__}")
        if isinstance(self.reads, str) or not all(isinstance(label, str) for label in self.reads):
            raise TypeError(f"reads must be a tuple of evidence labels (str), got {self.reads!r}")
        object.__setattr__(self, "reads", tuple(self.reads))

    def apply(self, evidence: Mapping[str, float]) -> Finding:
        """The finding for ``evidence``; an error if a label the rule reads is missing."""
        missing = [label for label in self.reads if label not in evidence]
        if missing:
            raise ValueError(f"evidence lacks {missing}, which the rule reads; it has {list(evidence)}")
        finding = self.decide(evidence)
        if not isinstance(finding, Finding):
            raise TypeError(f"the rule's decide must return a Finding, got {type(finding).__name__} {finding!r}")
        return finding


def _comparison(name: str, value: Any) -> Comparison:
    if not isinstance(value, Comparison):
        raise TypeError(f"{name} must be a Comparison such as at_least(2) or below(0.1), got {value!r}")
    return value


def holds_if(label: str, comparison: Comparison) -> Rule:
    """Holds if the evidence ``label`` passes ``comparison``; otherwise does not hold in this setting."""
    label, comparison = _text("label", label), _comparison("comparison", comparison)
    return Rule(f"holds if “{label}” {comparison.text}; otherwise does not hold in this setting",
                lambda evidence: Finding(Verdict.HOLDS if comparison(evidence[label]) else Verdict.DOES_NOT_HOLD),
                reads=(label,))


def holds_where(measure: str, comparison: Comparison, settings: Sequence[str]) -> Rule:
    """A claim tested in several settings: the evidence labels are ``"<measure> <setting>"``, in order
    (``rule.reads``), e.g. ``"first ÷ last gradient with layer norm"``.

    Holds if ``measure`` passes ``comparison`` in every setting; holds with the condition "only
    <the settings where it passes>" if in some; does not hold in this setting if in none.
    """
    measure, comparison = _text("measure", measure), _comparison("comparison", comparison)
    if isinstance(settings, str) or not isinstance(settings, Sequence) or len(settings) < 2:
        raise ValueError(f"settings must be a list of at least two settings (e.g. ['with batch norm', "
                         f"'with layer norm']), got {settings!r}")
    settings = [_text("settings[i]", setting, max_length=60) for setting in settings]
    if len(set(settings)) != len(settings):
        raise ValueError(f"settings must be distinct, got {settings}")
    labels = {setting: f"{measure} {setting}" for setting in settings}

    def decide(evidence: Mapping[str, float]) -> Finding:
        passing = [setting for setting, label in labels.items() if comparison(evidence[label])]
        if len(passing) == len(settings):
            return Finding(Verdict.HOLDS)
        if passing:
            return Finding(Verdict.HOLDS_WITH_CONDITION, "only " + _and(passing))
        return Finding(Verdict.DOES_NOT_HOLD)

    text = (f"holds if “{measure}” {comparison.text} {_and(settings)}; holds with a condition, naming "
            "where, if only in some of these; otherwise does not hold in this setting")
    return Rule(text, decide, reads=tuple(labels.values()))


def _and(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


@dataclass(frozen=True)
class Claim:
    """A claim as popular accounts put it, where it comes from, and the rule that decides it.

    ``id``: lower-case snake_case, stable (the ledger's glue keys are ``claim_<id>_<field>``);
    ``statement``: one sentence ending in a full stop; ``source``: a key of ``book/references.bib``
    or ``"common account"``.
    """

    id: str
    statement: str
    source: str
    rule: Rule

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not _CLAIM_ID.fullmatch(self.id) or len(self.id) > 60:
            raise ValueError(f"id must be lower-case snake_case such as 'plain_deeper_trains_worse' "
                             f"(at most 60 characters), got {self.id!r}")
        statement = _text("statement", self.statement)
        if not statement.endswith("."):
            raise ValueError(f"statement must be one sentence ending in '.', got {statement!r}")
        object.__setattr__(self, "statement", statement)
        source = _text("source", self.source, max_length=80)
        if source != COMMON_ACCOUNT and not _BIBTEX_KEY.fullmatch(source):
            raise ValueError(f"source must be a key of book/references.bib (e.g. 'he2016deep') "
                             f"or {COMMON_ACCOUNT!r}, got {source!r}")
        if not isinstance(self.rule, Rule):
            raise TypeError(f"rule must be a Rule (e.g. holds_if(label, at_least(2))), got {self.rule!r}")


def format_number(value: float) -> str:
    """A measured number as the ledger prints it: three significant digits (``0.0123``, ``9.62e+03``)."""
    return f"{value:.3g}"


@dataclass(frozen=True)
class Judgement:
    """A claim, the evidence measured for it, and the finding its rule computed from that evidence."""

    claim: Claim
    evidence: dict[str, float]
    finding: Finding

    @property
    def verdict(self) -> Verdict:
        return self.finding.verdict

    def evidence_text(self) -> str:
        return "; ".join(f"{label}: {format_number(value)}" for label, value in self.evidence.items())

    def glued(self) -> dict[str, str]:
        """The ledger's values under their glue keys ``claim_<id>_<field>``."""
        values = dict(statement=self.claim.statement, source=self.claim.source, rule=self.claim.rule.text,
                      verdict=str(self.finding), evidence=self.evidence_text())
        return {f"claim_{self.claim.id}_{field}": values[field] for field in FIELDS}

    def __str__(self) -> str:
        claim = self.claim
        return (f"Claim ({claim.source}): {claim.statement}\nRule: {claim.rule.text}\n"
                f"Evidence: {self.evidence_text()}\nVerdict: {self.finding}")

    def _repr_markdown_(self) -> str:
        claim = self.claim
        lines = [f"**Claim** ({_escape(claim.source)}): {_escape(claim.statement)}",
                 f"**Rule:** {_escape(claim.rule.text)}",
                 f"**Evidence:** {_escape(self.evidence_text())}",
                 f"**Verdict: {_escape(str(self.finding))}**"]
        return "\n>\n".join(f"> {line}" for line in lines)


def _escape(text: str) -> str:
    """``text`` with Markdown's special characters escaped, so that it shows as written."""
    return re.sub(r"([\\`*_{}\[\]<>#|~$])", r"\\\1", text)


def judge(claim: Claim, evidence: Mapping[str, Any]) -> Judgement:
    """Apply ``claim``'s rule to ``evidence`` (label → measured number)."""
    if not isinstance(claim, Claim):
        raise TypeError(f"claim must be a Claim, got {type(claim).__name__}")
    if not isinstance(evidence, Mapping) or not evidence:
        raise ValueError(f"evidence must be a non-empty mapping of label -> measured number, got {evidence!r}")
    numbers_by_label = {}
    for label, value in evidence.items():
        label = _text("evidence label", label, max_length=80)
        if ";" in label:
            raise ValueError(f"evidence label must not contain ';' (it separates the evidence), got {label!r}")
        numbers_by_label[label] = _number(f"evidence[{label!r}]", value)
    return Judgement(claim, numbers_by_label, claim.rule.apply(numbers_by_label))


def record(claim: Claim, evidence: Mapping[str, Any]) -> Judgement:
    """Judge ``claim`` on ``evidence``, glue it for the ledger page and show it in the notebook.

    End the call with ``;`` in a notebook: the judgement is already shown.
    """
    judgement = judge(claim, evidence)
    for key, value in judgement.glued().items():
        glue(key, value)
    _show(judgement)
    return judgement


def _show(judgement: Judgement) -> None:
    """Display the judgement as Markdown in a Jupyter kernel (Jupyter, Colab, the book build), else print it.

    A kernel's shell has a ``kernel``; the bare shell that myst-nb's ``glue`` starts outside a kernel
    (and a terminal IPython) would show only the ``repr``, so they get the printed text.
    """
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        print(judgement)
        return
    shell = get_ipython()
    if shell is not None and getattr(shell, "kernel", None) is not None:
        display(judgement)
    else:
        print(judgement)
