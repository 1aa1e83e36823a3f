"""Label names and prompt templates for zero-shot classification, checked once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from headstart._errors import UserError

DEFAULT_TEMPLATE = "This text is about {}."


class LabelError(UserError, ValueError):
    """Bad label names or template; the message names the option."""


def parse_labels(labels: str | Sequence[str] | Mapping[str, str]) -> dict[str, str]:
    """``{name: description}`` from ``"a,b,c"`` (or ``"a=description,b=..."``), a list of
    names, or a mapping of names to descriptions (the text that is embedded; a name alone
    describes itself). Empty names, duplicates (ignoring case and surrounding spaces) and
    fewer than two are refused."""
    if isinstance(labels, str):
        pairs = [
            (n.partition("=")[0], n.partition("=")[2] if "=" in n else n) for n in labels.split(",")
        ]
    elif isinstance(labels, Mapping):
        pairs = [(str(k), str(v)) for k, v in labels.items()]
    else:
        pairs = [(str(n), str(n)) for n in labels]
    out: dict[str, str] = {}
    seen: dict[str, str] = {}
    for i, (name, desc) in enumerate(pairs, 1):
        name, desc = name.strip(), desc.strip()
        if not name:
            raise LabelError(f"--labels: label {i} is empty (labels are comma-separated names)")
        if not desc:
            raise LabelError(f"--labels: the description of {name!r} is empty")
        key = name.casefold()
        if key in seen:
            raise LabelError(f"--labels: {name!r} is given twice (as {seen[key]!r} before)")
        seen[key] = name
        out[name] = desc
    if len(out) < 2:
        raise LabelError(f"--labels: two or more label names are needed, found {list(out)}")
    return out


def check_template(template: str) -> str:
    """A template with exactly one ``{}``, where the label's description goes."""
    if template.count("{}") != 1:
        raise LabelError(
            f"--template {template!r}: it must hold exactly one {{}} for the label, "
            'e.g. "This text is about {}."'
        )
    try:
        template.format("x")
    except (IndexError, KeyError, ValueError) as exc:
        raise LabelError(f"--template {template!r}: not a valid template ({exc})") from exc
    return template


def prompts(labels: Mapping[str, str], template: str) -> list[str]:
    """The text embedded for each label, in ``labels`` order."""
    template = check_template(template)
    return [template.format(desc) for desc in labels.values()]


__all__ = ["DEFAULT_TEMPLATE", "LabelError", "check_template", "parse_labels", "prompts"]
