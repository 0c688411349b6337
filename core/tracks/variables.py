"""Template variables, read from the Jinja AST: no protected-class attribute in any template,
the rate math only where it may be shown (rules in core.tracks.lint)."""

from __future__ import annotations

from dataclasses import dataclass

from jinja2 import nodes

from core.tracks.render import TemplateRenderer


@dataclass(frozen=True)
class LintProblem:
    """One broken rule in one template file."""

    path: str
    rule: str
    message: str


# Protected classes (ECOA, Fair Housing Act): never a template variable or attribute.
# fmt: off
PROTECTED_ATTRIBUTES = frozenset({
    "race", "ethnicity", "color", "colour", "religion", "creed", "national_origin", "nationality",
    "ancestry", "sex", "gender", "gender_identity", "sexual_orientation", "marital_status",
    "married", "spouse", "age", "birth_date", "birthdate", "date_of_birth", "dob", "birthday",
    "birth_year", "year_of_birth", "familial_status", "children", "dependents", "pregnancy",
    "pregnant", "disability", "disabled", "handicap", "public_assistance",
    "receives_public_assistance", "military_status", "veteran_status",
})
# fmt: on
_PROTECTED_PREFIXES = ("race_", "ethnic", "religio", "gender", "marital", "familial", "disabilit")
_PROTECTED_PREFIXES += ("national_origin", "sexual_", "birth", "pregnan", "handicap")


def variable_names(renderer: TemplateRenderer, name: str) -> dict[str, set[str]]:
    """Per template file (this one and all it includes): every variable and attribute name."""
    found: dict[str, set[str]] = {}
    for source_name, source in renderer.sources([name]).items():
        names: set[str] = set()
        parsed = renderer.env.parse(source)
        for node in parsed.find_all((nodes.Name, nodes.Getattr, nodes.Getitem)):
            if isinstance(node, nodes.Name):
                names.add(node.name)
            elif isinstance(node, nodes.Getattr):
                names.add(node.attr)
            elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
                names.add(node.arg.value)
        found[source_name] = names
    return found


def _is_protected(name: str) -> bool:
    lowered = name.lower()
    return lowered in PROTECTED_ATTRIBUTES or lowered.startswith(_PROTECTED_PREFIXES)


def variable_problems(
    renderer: TemplateRenderer, name: str, *, math_allowed: bool, internal_allowed: bool = False
) -> list[LintProblem]:
    """Protected-class attributes anywhere; the math and the internal rate text out of place."""
    problems = []
    for source_name, names in variable_names(renderer, name).items():
        for protected in sorted(n for n in names if _is_protected(n)):
            message = f"uses protected-class attribute {protected!r} (via {name})"
            problems.append(LintProblem(source_name, "protected_attribute", message))
        if "math" in names and not math_allowed:
            message = (
                f"{name} uses the payment math, allowed only in refinance, pmi_removal "
                "and fha_mip email bodies and call tasks"
            )
            problems.append(LintProblem(source_name, "math_not_allowed", message))
        if "rate_source" in names and not internal_allowed:
            message = (
                f"{name} uses reason.rate_source, the internal rate description: borrower "
                "messages say math.todays_rate"
            )
            problems.append(LintProblem(source_name, "internal_rate_source", message))
    return problems
