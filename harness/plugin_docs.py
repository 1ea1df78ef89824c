"""Reference pages of registered plugins, for ``harness describe`` and ``docs/metrics.md``.

A page holds what a user choosing a plugin for a spec needs: the distribution
supplying it, its summary, its declared tags (for metrics also the direction
and bounds), its citation, and every constructor parameter with its default
and its description from the class docstring's NumPy "Parameters" section.
Pages render as plain text or Markdown; :func:`metric_catalogue` renders every
core metric, grouped by kind.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.errors import PluginError, did_you_mean

if TYPE_CHECKING:
    from harness.plugin_manager import Registries

KINDS = ("datasets", "models", "explainers", "metrics")
CATALOGUE_COMMAND = "harness describe --catalogue --markdown > docs/metrics.md"
WIDTH = 88
_ROLE = re.compile(r":[\w:]+:`~?([^`]+)`")


@dataclass(frozen=True)
class ParamDoc:
    """One constructor parameter as documented for users.

    ``default`` is the rendered default (``"required"`` when there is none),
    ``note`` an optional remark on it (the length of an abbreviated sequence);
    ``type`` and ``description`` come from the docstring and are empty when
    undocumented.
    """

    name: str
    default: str
    note: str = ""
    type: str = ""
    description: str = ""


@dataclass(frozen=True)
class PluginDoc:
    """Everything ``harness describe`` shows about one plugin.

    ``facts`` are (label, value) pairs: direction and bounds for metrics, then
    one per field of the plugin's tags dataclass.
    """

    name: str
    kind: str
    distribution: str
    version: str
    summary: str
    facts: tuple[tuple[str, str], ...]
    citation: str
    params: tuple[ParamDoc, ...]


def parse_parameters(doc: str) -> dict[str, tuple[str, str]]:
    """Return ``name -> (type, description)`` from a NumPy-style "Parameters" section.

    Parsed by ``docstring_parser``; ``a, b : int`` documents two names, lines
    of a description are joined into paragraphs (separated by a blank line).
    A docstring without the section gives an empty dict.
    """
    from docstring_parser import DocstringStyle, parse

    out: dict[str, tuple[str, str]] = {}
    for param in parse(doc, style=DocstringStyle.NUMPYDOC).params:
        text = param.description or ""
        paragraphs = (" ".join(p.split()) for p in re.split(r"\n\s*\n", text))
        value = (param.type_name or "", "\n\n".join(p for p in paragraphs if p))
        for name in param.arg_name.split(","):
            out[name.strip().lstrip("*")] = value
    return out


def summary(doc: str) -> str:
    """Return the first paragraph of ``doc`` on one line (roles turned into code)."""
    first = inspect.cleandoc(doc).strip().split("\n\n", 1)[0]
    return _plain(" ".join(line.strip() for line in first.splitlines()))


def find_plugin(registries: Registries, name: str) -> list[str]:
    """Return the kinds (``"metrics"``, ...) whose registry holds ``name``.

    Raises
    ------
    PluginError
        When no registry holds ``name``; the message names the closest names.
    """
    found = [k for k in KINDS if name in registries.kind(k)]
    if not found:
        pool = [n for k in KINDS for n in registries.kind(k).names()]
        raise PluginError(
            f"harness describe: unknown plugin {name!r} - expected a registered dataset, "
            f"model, explainer or metric.{did_you_mean(name, pool)}",
            plugin=name,
        )
    return found


def plugin_doc(cls: type[Any], *, kind: str, distribution: str = "") -> PluginDoc:
    """Return the reference page of plugin class ``cls``.

    ``kind`` is the registry kind (``"datasets"``, ``"models"``, ``"explainers"``
    or ``"metrics"``); ``distribution`` is ``"dist version"`` as ``harness ls``
    shows it. A parameter not documented by ``cls`` takes its description from
    the nearest base class that documents it.
    """
    own = cls.__dict__.get("__doc__")
    documented = _documented_params(cls)
    params = []
    for pname, default in _init_params(cls):
        kind_text, description = documented.get(pname, ("", ""))
        shown, note = _default(default)
        params.append(ParamDoc(pname, shown, note, _plain(kind_text), _plain(description)))
    return PluginDoc(
        name=str(getattr(cls, "name", "") or cls.__qualname__),
        kind=kind.removesuffix("s"),
        distribution=distribution,
        version=str(getattr(cls, "version", "")),
        summary=summary(own) if isinstance(own, str) else "",
        facts=_facts(cls, kind),
        citation=str(getattr(cls, "citation", "") or ""),
        params=tuple(params),
    )


def registered_doc(registries: Registries, kind: str, name: str) -> PluginDoc:
    """Return the page of the ``kind`` plugin registered as ``name``."""
    registry = registries.kind(kind)
    entry = registry.entry(name)
    dist = f"{entry.distribution} {entry.dist_version}".strip()
    return plugin_doc(registry.get(name), kind=kind, distribution=dist)


def describe(registries: Registries, name: str, *, markdown: bool = False) -> str:
    """Return the rendered page(s) of ``name`` (one per kind that registers it)."""
    pages = [registered_doc(registries, kind, name) for kind in find_plugin(registries, name)]
    render = render_markdown if markdown else render_text
    return "\n".join(render(page) for page in pages)


def render_text(doc: PluginDoc) -> str:
    """Render a page as plain text, wrapped at 88 columns."""
    fill = functools.partial(textwrap.fill, width=WIDTH, break_on_hyphens=False)
    out = [f"{doc.name} ({doc.kind})", ""]
    if doc.summary:
        out += [fill(doc.summary), ""]
    rows = _rows(doc)
    width = max(len(label) for label, _ in rows) + 2
    for label, value in rows:
        out.append(
            fill(
                value,
                initial_indent=f"  {label:<{width}}",
                subsequent_indent=" " * (width + 2),
            )
        )
    out += ["", "Parameters" if doc.params else "Parameters: none"]
    for p in doc.params:
        typed = f" : {p.type}" if p.type else ""
        note = f"  ({p.note})" if p.note else ""
        out.append(f"  {p.name}{typed} = {p.default}{note}")
        for para in p.description.split("\n\n") if p.description else []:
            out.append(fill(para, initial_indent=" " * 6, subsequent_indent=" " * 6))
    return "\n".join(out) + "\n"


def render_markdown(doc: PluginDoc, *, level: int = 1) -> str:
    """Render a page as Markdown; its heading is at ``level`` (1 = ``#``)."""
    out = [f"{'#' * level} `{doc.name}`", ""]
    if doc.summary:
        out += [doc.summary, ""]
    out += [f"- **{label}:** {value}" for label, value in _rows(doc)]
    out += ["", "**Parameters**" if doc.params else "**Parameters:** none", ""]
    for p in doc.params:
        typed = f" ({p.type})" if p.type else ""
        note = f" ({p.note})" if p.note else ""
        head = f"- `{p.name}`{typed}, default `{p.default}`{note}"
        paras = p.description.split("\n\n") if p.description else []
        out.append(f"{head}: {paras[0]}" if paras else head)
        out += [f"\n  {para}" for para in paras[1:]]
    if doc.params:
        out.append("")
    return "\n".join(out)


def metric_catalogue(
    registries: Registries, *, distribution: str = "harness", markdown: bool = True
) -> str:
    """Return the pages of every metric of ``distribution``, grouped by kind.

    The Markdown form is ``docs/metrics.md``: a "generated by" header naming
    :data:`CATALOGUE_COMMAND`, an index, then one section per kind.
    """
    from harness.contracts.tags import MetricKind

    metrics = registries.metrics
    names = [n for n in metrics.names() if metrics.entry(n).distribution == distribution]
    groups = {kind: [n for n in names if metrics.get(n).tags.kind is kind] for kind in MetricKind}
    groups = {kind: group for kind, group in groups.items() if group}
    if not markdown:
        pages = [
            render_text(registered_doc(registries, "metrics", n)) for n in _flat(groups.values())
        ]
        return "\n".join(pages)
    out = [
        f"<!-- generated by `{CATALOGUE_COMMAND}`; do not edit -->",
        "# Metrics",
        "",
        f"Every metric of the core `{distribution}` distribution, grouped by kind. "
        "`harness describe NAME` prints one of these pages (`--markdown` as here); a "
        "parameter goes under `params:` of the metric in a spec.",
        "",
    ]
    for kind, group in groups.items():
        links = ", ".join(f"[`{n}`](#{_anchor(n)})" for n in group)
        out.append(f"- **{kind.value}**: {links}")
    for kind, group in groups.items():
        out += ["", f"## {kind.value.capitalize()}"]
        for n in group:
            out += ["", render_markdown(registered_doc(registries, "metrics", n), level=3).rstrip()]
    return "\n".join(out) + "\n"


def _anchor(heading: str) -> str:
    """Return the anchor GitHub gives a heading: lower case, punctuation but ``-_`` dropped."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def _flat(groups: Iterable[list[str]]) -> list[str]:
    return [n for group in groups for n in group]


def _plain(text: str) -> str:
    """Turn reStructuredText roles and double backticks into Markdown-style code."""
    return _ROLE.sub(r"`\1`", text).replace("``", "`")


def _documented_params(cls: type[Any]) -> dict[str, tuple[str, str]]:
    """Return the parameters documented by ``cls`` or, failing that, by its nearest base."""
    out: dict[str, tuple[str, str]] = {}
    for klass in cls.__mro__:
        doc = klass.__dict__.get("__doc__")
        if isinstance(doc, str):
            for name, value in parse_parameters(doc).items():
                out.setdefault(name, value)
    return out


def _init_params(cls: type[Any]) -> list[tuple[str, Any]]:
    """Return ``(name, default)`` of the named ``__init__`` parameters (keyword-only ones)."""
    if cls.__init__ is object.__init__:
        return []
    named = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    return [(p.name, p.default) for p in params if p.kind in named]


def _default(value: Any) -> tuple[str, str]:
    """Return the shown default and a note; long sequences are abbreviated."""
    if value is inspect.Parameter.empty:
        return "required", ""
    if isinstance(value, tuple | list) and len(value) > 6:
        items = [repr(v) for v in value]
        inner = ", ".join([*items[:3], "...", *items[-2:]])
        shown = f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
        return shown, f"{len(value)} values"
    return repr(value), ""


def _facts(cls: type[Any], kind: str) -> tuple[tuple[str, str], ...]:
    """Direction and bounds (metrics), then every field of the tags dataclass."""
    facts: list[tuple[str, str]] = []
    if kind == "metrics":
        better = "higher" if getattr(cls, "higher_is_better", True) else "lower"
        facts.append(("direction", f"{better} is better"))
        bounds = getattr(cls, "bounds", None)
        if bounds is not None:
            facts.append(("bounds", f"[{bounds[0]:g}, {bounds[1]:g}]"))
    tags = getattr(cls, "tags", None)
    if tags is not None and dataclasses.is_dataclass(tags):
        for field in dataclasses.fields(tags):
            label = "metric kind" if field.name == "kind" else field.name.replace("_", " ")
            facts.append((label, _tag_value(getattr(tags, field.name))))
    return tuple(facts)


def _tag_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "none"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, frozenset | set | tuple | list):
        shown = sorted(str(v.value if isinstance(v, enum.Enum) else v) for v in value)
        return ", ".join(shown) if shown else "none"
    return str(value)


def _rows(doc: PluginDoc) -> list[tuple[str, str]]:
    """Return the (label, value) rows shown under the summary."""
    rows = [("kind", doc.kind), ("distribution", doc.distribution)]
    rows += [("plugin version", doc.version), *doc.facts]
    return rows + ([("citation", doc.citation)] if doc.citation else [])
