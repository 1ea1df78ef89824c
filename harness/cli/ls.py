"""``harness ls [KIND]``: discovered plugins with the distribution and version supplying them."""

from __future__ import annotations

import argparse

from harness.cli._spec_args import add_block_argument, blocked_plugins

KINDS = ("datasets", "models", "explainers", "metrics")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``ls`` arguments."""
    parser.add_argument("kind", nargs="?", choices=KINDS, help="one plugin kind (default: all)")
    parser.add_argument(
        "--tags", action="store_true", help="also show each plugin's declared tags (imports it)"
    )
    add_block_argument(parser)


def _tags(registry: object, name: str) -> str:
    """Format the plugin's class tags, and a metric's token variant (``over="tokens"``) if any."""
    import inspect

    from harness.errors import PluginError

    try:
        cls = registry.get(name)  # type: ignore[attr-defined]
    except PluginError as exc:
        return f"cannot load: {exc}"
    line = _format(cls.tags)
    if hasattr(cls, "higher_is_better"):
        line += " higher is better" if cls.higher_is_better else " lower is better"
    params = inspect.signature(cls).parameters
    if "over" in params and params["over"].default == "pixels":
        tokens = {"over": "tokens"} | ({"similarity": "spearman"} if "similarity" in params else {})
        line += f" | over=tokens: {_format(cls(**tokens).get_tags())}"
    return line


def _format(tags: object) -> str:
    parts = []
    for field in ("modality", "modalities", "task", "tasks", "needs", "provides", "output", "kind"):
        value = getattr(tags, field, None)
        if value:
            shown = (
                value.value if hasattr(value, "value") else ",".join(sorted(v.value for v in value))
            )
            parts.append(f"{field}={shown}")
    return " ".join(parts)


def execute(args: argparse.Namespace) -> int:
    """Print one line per plugin: kind, name, distribution, version."""
    from harness.plugin_manager import get_registries

    regs = get_registries(blocked_plugins(args.plugins))
    for kind in [args.kind] if args.kind else KINDS:
        registry = regs.kind(kind)
        print(f"{kind} ({len(registry.names())})")
        for name in registry.names():
            conflict = registry.conflict(name)
            if conflict is not None:
                print(f"  {name:40s} CONFLICT: {conflict}")
                continue
            entry = registry.entry(name)
            line = f"  {name:40s} {entry.distribution} {entry.dist_version}"
            print(f"{line}  {_tags(registry, name)}" if args.tags else line)
    return 0
