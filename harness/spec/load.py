"""Read a YAML spec safely, resolve ``include:``, and validate it against the registries.

Every problem is collected (not just the first) and names the file, the key
path, the line and, for unknown names, the closest valid names.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from harness.contracts.component import sha256_of
from harness.errors import PluginError, SpecError, did_you_mean, suggest
from harness.plugin_manager import Registries, get_registries
from harness.spec.params import describe_hint, init_hints, matches
from harness.spec.schema import (
    DEVICES,
    TARGET_POLICIES,
    BootstrapSpec,
    ExplainSpec,
    PluginSpec,
    Spec,
)

TOP_KEYS = (
    "benchmark",
    "version",
    "seed",
    "device",
    "description",
    "include",
    "dataset",
    "datasets",
    "models",
    "explainers",
    "metrics",
    "explain",
    "bootstrap",
)
PLUGIN_KEYS = ("name", "params", "label")
SPEC_VERSION = 1
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")
BENCHMARK_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


def _line_map(node: yaml.Node, prefix: str, out: dict[str, int]) -> None:
    out.setdefault(prefix, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = f"{prefix}.{key.value}" if prefix else str(key.value)
            out[path] = key.start_mark.line + 1
            _line_map(value, path, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            _line_map(value, f"{prefix}[{i}]", out)


class _Reader:
    """Collects problems while reading one spec and its includes."""

    def __init__(self, path: Path) -> None:
        self.root = path
        self.problems: list[SpecError] = []
        self.lines: dict[tuple[str, str], int] = {}
        self.origin: dict[str, str] = {}

    def problem(self, key: str, message: str, suggestions: list[str] | None = None) -> None:
        file = self.origin.get(key.split(".")[0].split("[")[0], str(self.root))
        probe = key
        while (file, probe) not in self.lines:
            parent = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", probe)
            if parent == probe:
                break
            probe = parent
        line = self.lines.get((file, probe))
        self.problems.append(SpecError(file, key, message, line=line, suggestions=suggestions))

    def read(self, path: Path, stack: tuple[Path, ...] = ()) -> dict[str, Any]:
        resolved = path.resolve()
        if resolved in stack:
            chain = " -> ".join(str(p) for p in (*stack, resolved))
            raise SpecError(str(path), "include", f"include cycle: {chain}")
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SpecError(str(path), "", f"cannot read spec: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            bad = exc.object[exc.start : exc.start + 1].hex()
            raise SpecError(
                str(path),
                "",
                f"not valid UTF-8 text: byte 0x{bad} at position {exc.start} cannot be decoded "
                "- expected a UTF-8 encoded YAML file, got undecodable bytes",
            ) from exc
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark else None
            raise SpecError(str(path), "", f"invalid YAML: {exc}", line=line) from exc
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise SpecError(
                str(path), "", f"expected a mapping at top level, got {type(data).__name__}"
            )
        lines: dict[str, int] = {}
        if node is not None:
            _line_map(node, "", lines)
        for key, line in lines.items():
            self.lines[(str(path), key)] = line
        merged: dict[str, Any] = {}
        includes = data.pop("include", None) or []
        for inc in [includes] if isinstance(includes, str) else includes:
            merged.update(self.read(path.parent / str(inc), (*stack, resolved)))
        for key in data:
            self.origin[key] = str(path)
        merged.update(data)
        return merged


def _plugin_entries(reader: _Reader, data: dict[str, Any], key: str) -> list[tuple[str, Any]]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        reader.problem(key, f"expected a list of plugins, got {type(value).__name__}")
        return []
    return [(f"{key}[{i}]", v) for i, v in enumerate(value)]


def _check_params(reader: _Reader, where: str, cls: type, params: Mapping[str, Any]) -> bool:
    """Report unknown parameters and values whose type the constructor does not accept.

    The ``__init__`` annotation decides when there is one; otherwise the
    default's type. Returns whether every parameter passed.
    """
    names = cls.param_names()  # type: ignore[attr-defined]
    defaults = cls.param_defaults()  # type: ignore[attr-defined]
    hints = init_hints(cls)
    ok_all = True
    for pname, value in params.items():
        if pname not in names:
            close = suggest(pname, names)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            reader.problem(
                f"{where}.params.{pname}",
                f"unknown parameter {pname!r} of {cls.name!r}.{hint} "  # type: ignore[attr-defined]
                f"Valid parameters: {', '.join(names) or '(none)'}.",
                close,
            )
            ok_all = False
            continue
        default = defaults.get(pname)
        shown = "" if default is inspect.Parameter.empty else f" (default {default!r})"
        if pname in hints:
            if not matches(value, hints[pname]):
                reader.problem(
                    f"{where}.params.{pname}",
                    f"expected {describe_hint(hints[pname])}{shown}, got {type(value).__name__} {value!r}",
                )
                ok_all = False
            continue
        expected = type(default)
        if default is None or isinstance(default, (list, tuple, dict)) or expected is type:
            continue
        ok = isinstance(value, expected) or (expected is float and isinstance(value, int))
        if expected is int and isinstance(value, bool):
            ok = False
        if not ok:
            reader.problem(
                f"{where}.params.{pname}",
                f"expected {expected.__name__} (default {default!r}), got {type(value).__name__} {value!r}",
            )
            ok_all = False
    return ok_all


def _check_construction(reader: _Reader, where: str, cls: type, params: Mapping[str, Any]) -> None:
    """Build the plugin, check its parameters and read its tags, reporting a refused value.

    Constructors only store their arguments, so this is cheap;
    ``check_params`` checks ranges and choices, ``get_tags`` values that
    depend on each other (``over``, ``similarity``).
    """
    try:
        instance = cls(**params)
        instance.check_params()
        if hasattr(instance, "get_tags"):
            instance.get_tags()
    except PluginError as exc:
        reader.problem(f"{where}.params", str(exc))
    except TypeError as exc:  # a required parameter is missing
        reader.problem(f"{where}.params", f"cannot build {cls.__name__}: {exc}")
    except Exception as exc:  # a third-party check that raises something else
        reader.problem(
            f"{where}.params", f"{cls.__name__} refused its parameters: {type(exc).__name__}: {exc}"
        )


def _plugin(
    reader: _Reader, regs: Registries, kind: str, where: str, raw: Any
) -> PluginSpec | None:
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, dict):
        reader.problem(where, f"expected a plugin name or a mapping with 'name', got {raw!r}")
        return None
    for k in raw:
        if k not in PLUGIN_KEYS:
            close = suggest(str(k), PLUGIN_KEYS)
            reader.problem(
                f"{where}.{k}", f"unknown key {k!r}.{did_you_mean(str(k), PLUGIN_KEYS)}", close
            )
    name = raw.get("name")
    params = raw.get("params") or {}
    if not isinstance(name, str):
        reader.problem(
            f"{where}.name", f"expected the name of a registered {kind[:-1]}, got {name!r}"
        )
        return None
    if not isinstance(params, dict):
        reader.problem(f"{where}.params", f"expected a mapping of parameters, got {params!r}")
        return None
    registry = regs.kind(kind)
    if name not in registry:
        names = registry.names()
        reader.problem(
            f"{where}.name",
            f"unknown {kind[:-1]} {name!r}.{did_you_mean(name, names)}",
            suggest(name, names),
        )
        return None
    try:
        cls = registry.get(name)
    except PluginError as exc:
        reader.problem(f"{where}.name", str(exc))
        return None
    if _check_params(reader, where, cls, params):
        _check_construction(reader, where, cls, params)
    return PluginSpec(name=name, params=dict(params), label=str(raw.get("label") or ""))


def _section(reader: _Reader, data: dict[str, Any], key: str, cls: type) -> Any:
    raw = data.get(key) or {}
    if not isinstance(raw, dict):
        reader.problem(key, f"expected a mapping, got {type(raw).__name__}")
        return cls()
    defaults = cls()
    fields = list(defaults.__dataclass_fields__)
    values = {}
    for k, v in raw.items():
        if k not in fields:
            reader.problem(
                f"{key}.{k}",
                f"unknown key {k!r}.{did_you_mean(str(k), fields)}",
                suggest(str(k), fields),
            )
            continue
        expected = type(getattr(defaults, k))
        if not (isinstance(v, expected) or (expected is float and isinstance(v, int))) or (
            expected is int and isinstance(v, bool)
        ):
            reader.problem(f"{key}.{k}", f"expected {expected.__name__}, got {v!r}")
            continue
        values[k] = v
    return cls(**values)


def _scalar(reader: _Reader, data: dict[str, Any], key: str, typ: type, default: Any) -> Any:
    value = data.get(key, default)
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        reader.problem(key, f"expected {typ.__name__}, got {value!r}")
        return default
    return value


def _parse(reader: _Reader, data: dict[str, Any], regs: Registries) -> Spec:
    for key in data:
        if key not in TOP_KEYS:
            reader.problem(
                str(key),
                f"unknown key {key!r}.{did_you_mean(str(key), TOP_KEYS)}",
                suggest(str(key), TOP_KEYS),
            )
    if "dataset" in data and "datasets" in data:
        reader.problem("dataset", "give either 'dataset' or 'datasets', not both")
    if "dataset" in data:
        data = {**data, "datasets": [data["dataset"]]}
    kinds = ("datasets", "models", "explainers", "metrics")
    plugins: dict[str, list[PluginSpec]] = {k: [] for k in kinds}
    for kind in kinds:
        entries = _plugin_entries(reader, data, kind)
        reported = any(p.key_path.startswith(kind) for p in reader.problems)
        if kind != "explainers" and not entries and not reported:
            reader.problem(kind, f"expected at least one {kind[:-1]}")
        for where, raw in entries:
            if kind == "datasets" and "dataset" in data:
                where = "dataset"
            spec = _plugin(reader, regs, kind, where, raw)
            if spec is not None:
                plugins[kind].append(spec)
        keys = [p.key for p in plugins[kind]]
        for dup in sorted({k for k in keys if keys.count(k) > 1}):
            reader.problem(kind, f"{dup!r} appears twice; give each a distinct 'label'")
    device = _scalar(reader, data, "device", str, "auto")
    if not DEVICE_PATTERN.fullmatch(device):
        reader.problem("device", f"expected one of {', '.join(DEVICES)} or cuda:N, got {device!r}")
    explain = _section(reader, data, "explain", ExplainSpec)
    if explain.targets not in TARGET_POLICIES:
        reader.problem(
            "explain.targets",
            f"expected one of {', '.join(TARGET_POLICIES)}, got {explain.targets!r}",
        )
    bootstrap = _section(reader, data, "bootstrap", BootstrapSpec)
    _check_ranges(reader, explain, bootstrap)
    version = _scalar(reader, data, "version", int, SPEC_VERSION)
    if version != SPEC_VERSION:
        reader.problem(
            "version",
            f"unknown spec version - expected {SPEC_VERSION} (the only version this harness "
            f"reads), got {version!r}",
        )
    benchmark = _scalar(reader, data, "benchmark", str, reader.root.stem)
    if "benchmark" in data and not BENCHMARK_PATTERN.fullmatch(benchmark):
        reader.problem(
            "benchmark",
            "invalid benchmark name (it names the output folder) - expected a plain file name "
            f"of letters, digits, '.', '_' or '-' not starting with '.', got {benchmark!r}",
        )
    return Spec(
        file=str(reader.root),
        benchmark=benchmark,
        version=version,
        seed=_scalar(reader, data, "seed", int, 0),
        device=device,
        datasets=tuple(plugins["datasets"]),
        models=tuple(plugins["models"]),
        explainers=tuple(plugins["explainers"]),
        metrics=tuple(plugins["metrics"]),
        explain=explain,
        bootstrap=bootstrap,
    )


def _check_ranges(reader: _Reader, explain: ExplainSpec, bootstrap: BootstrapSpec) -> None:
    """Report counts below 1 and a confidence level outside (0, 1)."""
    counts = {
        "explain.n": explain.n,
        "explain.batch_size": explain.batch_size,
        "explain.k": explain.k,
        "bootstrap.n": bootstrap.n,
    }
    for key, value in counts.items():
        if value < 1:
            reader.problem(key, f"expected an integer >= 1, got {value!r}")
    if not 0 < bootstrap.confidence < 1:
        reader.problem(
            "bootstrap.confidence",
            f"expected a confidence level between 0 and 1 (exclusive), e.g. 0.95, "
            f"got {bootstrap.confidence!r}",
        )


def _override_value(file: str, key: str, raw: str) -> Any:
    """Parse the value of ``--set key=raw`` as YAML, or raise a SpecError naming the override."""
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise SpecError(
            file,
            f"--set {key}={raw}",
            f"invalid YAML value ({problem}) - expected a YAML scalar, list or mapping "
            f"such as 3, cpu, [a, b] or {{name: x}}, got {raw!r}",
        ) from exc


def apply_overrides(data: dict[str, Any], overrides: Sequence[str], file: str) -> dict[str, Any]:
    """Set ``dotted.key=value`` overrides (values parsed as YAML) on the raw spec.

    ``models[0].params.epochs=1`` indexes lists; ``dataset.params.root=/data/x`` sets a path.
    """
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SpecError(file, item, "expected an override of the form key.path=value")
        parts = [p for p in re.split(r"\.|\[(\d+)\]", key) if p]
        node: Any = data
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            index = int(part) if part.isdigit() else part
            if isinstance(node, list) and isinstance(index, int) and index < len(node):
                if last:
                    node[index] = _override_value(file, key, raw)
                else:
                    if isinstance(node[index], str):
                        node[index] = {"name": node[index]}
                    node = node[index]
            elif isinstance(node, dict) and isinstance(index, str):
                if last:
                    node[index] = _override_value(file, key, raw)
                else:
                    if isinstance(node.get(index), str):
                        node[index] = {"name": node[index]}
                    node = node.setdefault(index, {})
            else:
                raise SpecError(file, key, f"cannot set {part!r}: no such list item or mapping key")
    return data


def validate_spec(
    path: str | Path, registries: Registries | None = None, overrides: Sequence[str] = ()
) -> tuple[Spec | None, list[SpecError]]:
    """Read and check a spec (with ``--set`` overrides); return it (or None) with every problem."""
    reader = _Reader(Path(path))
    try:
        data = apply_overrides(reader.read(Path(path)), overrides, str(path))
    except SpecError as exc:
        return None, [exc]
    spec = _parse(reader, data, registries or get_registries())
    if reader.problems:
        return None, reader.problems
    content = {k: v for k, v in spec.__dict__.items() if k not in ("file", "spec_hash")}
    return Spec(**{**spec.__dict__, "spec_hash": sha256_of(content)[:16]}), []


def load_spec(
    path: str | Path, registries: Registries | None = None, overrides: Sequence[str] = ()
) -> Spec:
    """Return the validated spec or raise one SpecError listing every problem."""
    spec, problems = validate_spec(path, registries, overrides)
    if spec is None:
        if len(problems) == 1:
            raise problems[0]
        detail = "\n".join(f"  - {p}" for p in problems)
        err = SpecError(str(path), "", f"{len(problems)} problems:\n{detail}")
        err.suggestions = [s for p in problems for s in p.suggestions]
        raise err
    return spec
