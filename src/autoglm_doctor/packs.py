"""Check packs: YAML descriptions of what a deployment target needs.

A pack names the Python range, the packages (with ranges, recommended versions and the
config options that imply them) and, for later areas, config rules and environment. The
built-in packs live in the top-level ``checks/`` folder of the repository and ship inside
the wheel as ``autoglm_doctor/_packs``. ``--pack NAME|FILE`` picks one; a malformed pack is
a usage error naming file and line.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from autoglm_doctor import packs_schema, yamlpos
from autoglm_doctor.packs_schema import PackSettings
from autoglm_doctor.probe.snapshot import canonical_name

if TYPE_CHECKING:
    from autoglm_doctor.configfile.rules import PackRules

DEFAULT_PACK = "open-autoglm"

# Sections owned by later areas (config lint, services, devices): kept raw, validated there.
RAW_SECTIONS = ("config", "env", "service", "devices", "smoke", "launch", "request")
KNOWN_KEYS = {"pack", "description", "python", "gpu", "packages", *RAW_SECTIONS}
GPU_MODES = ("required", "optional", "none")


class PackError(ValueError):
    """A pack is missing or malformed (a usage error)."""


@dataclass(frozen=True, slots=True)
class Condition:
    """A config option whose presence (or value) makes a package required."""

    key: str
    """Dotted config key, e.g. ``device_map`` or ``model.load_in_8bit`` (empty for an ``env`` condition)."""
    equals: Any = None
    """The value that triggers it; None means "set to anything but null/false"."""
    env: str = ""
    """An environment variable instead of a config key (``PHONE_AGENT_DEVICE_TYPE``)."""

    def describe(self) -> str:
        """How the condition reads in a message."""
        if self.env:
            return f"{self.env} is set" if self.equals is None else f"{self.env}={self.equals}"
        if self.equals is None:
            return f"the config sets {self.key}"
        value = str(self.equals).lower() if isinstance(self.equals, bool) else self.equals
        return f"the config sets {self.key}: {value}"


@dataclass(frozen=True, slots=True)
class PackageRule:
    """One package the deployment needs."""

    name: str
    """Distribution name as on PyPI."""
    spec: str = ""
    """Allowed versions (PEP 440 specifier set); empty allows any."""
    recommended: str = ""
    """Version the integration guide recommends; older ones warn."""
    why: str = ""
    """Why it is needed, shown with findings."""
    when: tuple[Condition, ...] = ()
    """Required only when one of these config conditions holds (always when empty)."""
    alternatives: tuple[PackageRule, ...] = ()
    """Packages that satisfy the rule instead of this one (``one_of:``: vllm or sglang)."""
    line: int | None = None
    """Line of the rule in the pack file."""

    @property
    def specifier(self) -> SpecifierSet:
        """The allowed versions, parsed."""
        return SpecifierSet(self.spec)

    @property
    def choices(self) -> tuple[PackageRule, ...]:
        """The package itself and the alternatives that satisfy the rule as well."""
        return (self, *self.alternatives)

    def describe(self) -> str:
        """``vllm>=0.12.0`` or ``vllm>=0.12.0 or sglang>=0.5.6.post1``."""
        return " or ".join(f"{r.name}{r.spec}" for r in self.choices)


@dataclass(frozen=True, slots=True)
class Pack:
    """A loaded check pack."""

    name: str
    """Short name (``open-autoglm``)."""
    path: str
    """File it came from."""
    description: str = ""
    """One line on what deployment it describes."""
    python: str = ""
    """Supported Python versions (specifier set)."""
    python_recommended: str = ""
    """Python version the guide recommends."""
    gpu: str = "optional"
    """Whether the deployment needs an NVIDIA GPU: required, optional or none."""
    packages: tuple[PackageRule, ...] = ()
    """Packages the deployment needs."""
    sections: dict[str, Any] = field(default_factory=dict)
    """Raw sections for later areas (config rules, env, service, devices)."""
    source: yamlpos.Positioned | None = field(default=None, compare=False, repr=False)
    """The parsed file with positions, for errors that point at a line."""
    names: tuple[str, ...] = ()
    """Every pack merged into this one, in the order given (just ``name`` for a single pack)."""
    settings: PackSettings = field(default_factory=PackSettings)
    """The ``service``/``devices``/``smoke`` sections, typed and range-checked at load (what the checks read)."""
    rules: PackRules = field(default_factory=lambda: _no_rules())
    """The ``config``/``env``/``launch``/``request`` rules, typed at load (what the config checks read)."""


def _no_rules() -> PackRules:
    from autoglm_doctor.configfile.rules import PackRules

    return PackRules()


def builtin_dir() -> Path:
    """Folder of the built-in packs: inside the wheel, or ``checks/`` of a source checkout."""
    shipped = Path(__file__).parent / "_packs"  # = importlib.resources.files("autoglm_doctor"), cheaper
    if shipped.is_dir():
        return shipped
    return Path(__file__).resolve().parents[2] / "checks"


def builtin_names() -> list[str]:
    """Names of the packs that ship with the doctor."""
    return sorted(p.stem for p in builtin_dir().glob("*.yaml"))


def resolve(name_or_file: str | None) -> Path:
    """The file a ``--pack`` value refers to."""
    value = name_or_file or DEFAULT_PACK
    candidate = Path(value).expanduser()
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        if not candidate.is_file():
            raise PackError(f"pack file {value} does not exist")
        return candidate
    builtin = builtin_dir() / f"{value}.yaml"
    if not builtin.is_file():
        names = ", ".join(builtin_names()) or "none"
        raise PackError(f"unknown pack {value!r} (built-in packs: {names}; or pass a YAML file)")
    return builtin


def load(name_or_file: str | None = None) -> Pack:
    """Load and validate a pack by built-in name or file path; ``a,b`` loads both and merges them."""
    values = [v.strip() for v in (name_or_file or DEFAULT_PACK).split(",") if v.strip()] or [DEFAULT_PACK]
    loaded: list[Pack] = []
    for value in dict.fromkeys(values):
        path = resolve(value)
        try:
            doc = yamlpos.load_file(path)
            loaded.append(_validate(doc, path))
        except yamlpos.YamlError as exc:
            raise PackError(str(exc)) from exc
    return loaded[0] if len(loaded) == 1 else merge(loaded)


_GPU_STRENGTH = {"none": 0, "optional": 1, "required": 2}


def merge(loaded: list[Pack]) -> Pack:
    """One pack that asks for everything the given packs ask for (both sides of a deployment on one host).

    Python ranges intersect; the strongest GPU need wins; a package named twice keeps both ranges
    and is unconditional when either pack requires it unconditionally; the raw sections merge key by
    key, the first pack winning where both set the same leaf.
    """
    rules: dict[str, PackageRule] = {}
    for pack in loaded:
        for rule in pack.packages:
            key = canonical_name(rule.name)
            seen = rules.get(key)
            if seen is None:
                rules[key] = rule
                continue
            spec = ",".join(s for s in dict.fromkeys((seen.spec, rule.spec)) if s)
            when = () if not seen.when or not rule.when else (*seen.when, *rule.when)
            alternatives = seen.alternatives if seen.alternatives and rule.alternatives else ()
            why = seen.why if not rule.why or rule.why == seen.why else f"{seen.why}; {rule.why}".strip("; ")
            rules[key] = replace(
                seen,
                spec=spec,
                when=when,
                alternatives=alternatives,
                why=why,
                recommended=seen.recommended or rule.recommended,
            )
    sections: dict[str, Any] = {}
    for pack in loaded:
        sections = _merged(sections, pack.sections)
    python = ",".join(p.python for p in loaded if p.python)
    return Pack(
        name=" + ".join(p.name for p in loaded),
        path=", ".join(p.path for p in loaded),
        description="; ".join(p.description for p in loaded if p.description),
        python=str(SpecifierSet(python)) if python else "",
        python_recommended=next((p.python_recommended for p in loaded if p.python_recommended), ""),
        gpu=max((p.gpu for p in loaded), key=_GPU_STRENGTH.__getitem__),
        packages=tuple(rules.values()),
        sections=sections,
        source=loaded[0].source,
        names=tuple(n for p in loaded for n in p.names),
        # each pack's values passed at load; merged key by key, the result holds only values that passed
        settings=packs_schema.parse(sections),
        rules=_merged_rules(sections, loaded),
    )


def _merged_rules(sections: dict[str, Any], loaded: list[Pack]) -> PackRules:
    """The merged sections' rules, typed (a merge of valid sections stays valid: each rule key is valid alone)."""
    from autoglm_doctor.configfile.rules import RuleError, pack_rules

    try:
        return pack_rules(sections)
    except RuleError as exc:
        where = ".".join(map(str, exc.path))
        raise PackError(f"{', '.join(p.path for p in loaded)}: merged, {where}: {exc}") from None


def _merged(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    out = dict(first)
    for key, value in second.items():
        if isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = _merged(out[key], value)
        elif key not in out:
            out[key] = value
    return out


def _spec(doc: yamlpos.Positioned, path: tuple[Any, ...], value: Any) -> str:
    if value is None:
        return ""
    text = str(value).strip()
    try:
        SpecifierSet(text)
    except InvalidSpecifier:
        raise doc.error(path, f"{text!r} is not a version range (write e.g. '>=4.30,<5')") from None
    return text


def _version(doc: yamlpos.Positioned, path: tuple[Any, ...], value: Any) -> str:
    if value is None:
        return ""
    text = str(value).strip()
    try:
        Version(text)
    except InvalidVersion:
        raise doc.error(path, f"{text!r} is not a version") from None
    return text


def _validate(doc: yamlpos.Positioned, path: Path) -> Pack:
    data = doc.data
    if not isinstance(data, dict):
        raise doc.error((), "a pack is a mapping with at least a 'pack' name")
    unknown = sorted(set(map(str, data)) - KNOWN_KEYS)
    if unknown:
        raise doc.error((unknown[0],), f"unknown key {unknown[0]!r} (known: {', '.join(sorted(KNOWN_KEYS))})")
    name = data.get("pack")
    if not isinstance(name, str) or not name:
        raise doc.error(("pack",), "'pack' must be the pack's name")
    python = data.get("python") or {}
    if not isinstance(python, dict):
        raise doc.error(("python",), "'python' must be a mapping with 'range' and optionally 'recommended'")
    gpu = data.get("gpu", "optional")
    if gpu not in GPU_MODES:
        raise doc.error(("gpu",), f"'gpu' must be one of {', '.join(GPU_MODES)}")
    rules = []
    packages = data.get("packages") or []
    if not isinstance(packages, list):
        raise doc.error(("packages",), "'packages' must be a list")
    for i, item in enumerate(packages):
        where = ("packages", i)
        if isinstance(item, str):
            item = {"name": item}
        alternatives: list[PackageRule] = []
        if isinstance(item, dict) and "one_of" in item:
            item, alternatives = _one_of(doc, where, item)
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise doc.error(where, "each package needs a 'name' (or a 'one_of' list of packages)")
        extra = set(item) - {"name", "spec", "recommended", "why", "when"}
        if extra:
            raise doc.error(where, f"unknown package key {sorted(extra)[0]!r}")
        conditions = []
        when = item.get("when") or []
        if not isinstance(when, list):
            raise doc.error((*where, "when"), "'when' must be a list of {key, equals} conditions")
        for j, cond in enumerate(when):
            if isinstance(cond, str):
                cond = {"key": cond}
            if isinstance(cond, dict) and isinstance(cond.get("env"), str):
                conditions.append(Condition(key="", env=cond["env"], equals=cond.get("equals")))
                continue
            if not isinstance(cond, dict) or not isinstance(cond.get("key"), str):
                raise doc.error(
                    (*where, "when", j), "a condition needs a 'key' (a dotted config key) or an 'env' (a variable)"
                )
            conditions.append(Condition(key=cond["key"], equals=cond.get("equals")))
        rules.append(
            PackageRule(
                name=item["name"],
                spec=_spec(doc, (*where, "spec"), item.get("spec")),
                recommended=_version(doc, (*where, "recommended"), item.get("recommended")),
                why=str(item.get("why") or ""),
                when=tuple(conditions),
                alternatives=tuple(alternatives),
                line=doc.line(where),
            )
        )
    from autoglm_doctor.configfile.rules import validate_sections  # config area: config/env/launch/request

    rules_typed = validate_sections(doc)
    try:
        settings = packs_schema.parse(data)
    except packs_schema.SectionError as exc:
        raise doc.error(exc.path, str(exc)) from None
    return Pack(
        name=name,
        path=str(path),
        description=str(data.get("description") or ""),
        python=_spec(doc, ("python", "range"), python.get("range")),
        python_recommended=_version(doc, ("python", "recommended"), python.get("recommended")),
        gpu=gpu,
        packages=tuple(rules),
        sections={k: data[k] for k in RAW_SECTIONS if k in data},
        source=doc,
        names=(name,),
        settings=settings,
        rules=rules_typed,
    )


def _one_of(doc: yamlpos.Positioned, where: tuple[Any, ...], item: dict[str, Any]) -> tuple[Any, list[PackageRule]]:
    """``{one_of: [{name, spec}, ...], why, when}`` -> (the first choice as an item, the other choices)."""
    choices = item.get("one_of")
    extra = set(item) - {"one_of", "why", "when"}
    if extra:
        raise doc.error(where, f"unknown key {sorted(extra)[0]!r} beside one_of (allowed: why, when)")
    if not isinstance(choices, list) or len(choices) < 2:
        raise doc.error((*where, "one_of"), "'one_of' lists two or more packages ({name, spec})")
    rules = []
    for j, choice in enumerate(choices):
        if isinstance(choice, str):
            choice = {"name": choice}
        if not isinstance(choice, dict) or not isinstance(choice.get("name"), str) or set(choice) - {"name", "spec"}:
            raise doc.error((*where, "one_of", j), "each choice is {name, spec}")
        rules.append(
            PackageRule(
                name=choice["name"],
                spec=_spec(doc, (*where, "one_of", j, "spec"), choice.get("spec")),
                why=str(item.get("why") or ""),
                line=doc.line((*where, "one_of", j)),
            )
        )
    first = {"name": rules[0].name, "spec": rules[0].spec or None, "why": item.get("why"), "when": item.get("when")}
    return {k: v for k, v in first.items() if v is not None}, rules[1:]
