"""weights.architecture: whether the installed stack can load this model folder.

The folder says what loading needs (config.json's model_type and architectures, its processor
and tokenizer files); the installed libraries say what they can do, in their own files, read as
text (transformers' model-type and processor registries by the probe; each serving engine's served
architectures by its module, ``engines.<name>.registry()``). Where transformers' files could not be
read, the generated table ``knowledge/transformers_registry.yaml`` stands in, and it also names the first release that
knows a model type. Model code behind ``auto_map`` (trust_remote_code) stays with config.values.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from packaging.version import Version

from autoglm_doctor import engines
from autoglm_doctor.checks._util import parse_version, pip_install
from autoglm_doctor.checks.packages import GROUPED_MISSING, grouped_requirements
from autoglm_doctor.context import CheckContext
from autoglm_doctor.knowledge import libraries as kb
from autoglm_doctor.model import Finding, Location, Skip, error, info, warning
from autoglm_doctor.probe.libraries import ServedArchitectures, TransformersFiles
from autoglm_doctor.probe.snapshot import Distribution, Snapshot, canonical_name
from autoglm_doctor.probe.weights import ModelFacts
from autoglm_doctor.registry import check

_UNKNOWN_TYPE = (
    "ValueError: The checkpoint you are trying to load has model type `{mt}` but Transformers does not "
    "recognize this architecture"
)


@check(
    "weights.architecture",
    title="Installed stack can load this model",
    needs=("python", "model-folder"),
    why=(
        "A model type newer than the installed transformers, an architecture the serving engine lacks, or a "
        "processor or tokenizer whose library is missing passes every version check and then fails at load "
        "time (AutoConfig, AutoProcessor, AutoTokenizer), after minutes of start-up."
    ),
    fix="Install the transformers release (or the library) the finding names, with the command shown.",
)
def weights_architecture(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    """The installed transformers and serving engines know the architecture; processor and tokenizer needs are met.

    transformers for the in-process side, every installed serving engine (``engines.ENGINES``) for the served side.
    """
    m = snap.model
    assert m is not None  # guaranteed by the need
    if not m.model_type and not m.architectures:
        raise Skip("config.json names no model_type or architectures (see weights.files)")
    installed = snap.effective()
    files = snap.libraries.transformers if snap.libraries is not None else None
    tf = installed.get("transformers")
    yield from _transformers_knows(snap, m, tf, files)
    for key, engine in engines.ENGINES.items():
        served = engine.registry(snap.libraries)
        if served is not None and key in installed:
            yield from _engine_serves(snap, m, engine.title, installed[key], served)
        elif key not in installed:
            yield from _named_release_serves(snap, m, engine)
    needs = [*_processor_needs(snap, m, tf, files, installed), *_tokenizer_needs(snap, m, installed)]
    yield from _reported_once(needs, snap, ctx)


def _reported_once(needs: list[Finding], snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    """A missing library that packages.conflicts' grouped finding already lists is not a second error.

    An engine installed with ``--no-deps`` lacks Pillow, torchvision, sentencepiece... among its
    requirements: that is one failure, reported once (``packages.dependencies-missing``, whose reinstall
    brings them). What the model needs from that list stays as an info note naming that finding.
    """
    earlier = ctx.earlier.get("packages.conflicts")
    grouped = [f for f in earlier.findings if f.code == GROUPED_MISSING] if earlier is not None else []
    named = grouped_requirements(snap, [line for f in grouped for line in f.details]) if grouped else {}
    for finding in needs:
        library = (finding.observed or "").removesuffix(" not installed")
        owner = next((line for line, key in named.items() if key == canonical_name(library)), "")
        if not owner or finding.observed == library:
            yield finding
            continue
        who = owner.partition(" requires ")[0]
        yield info(
            finding.code,
            f"{finding.message}; it is one of the requirements {who} is missing, reported once by "
            f"packages.conflicts ({GROUPED_MISSING}), whose reinstall brings it",
            location=finding.location,
            observed=finding.observed,
            expected=finding.expected,
        )


def _config(m: ModelFacts) -> Location:
    return Location(str(Path(m.path) / "config.json"))


def _remote_config(m: ModelFacts) -> bool:
    return "AutoConfig" in m.auto_map


def _knows(files: TransformersFiles | None, tf: Distribution, model_type: str) -> tuple[bool | None, str]:
    """(does the installed transformers know model_type, where that was read); None when undecidable."""
    if files is not None and files.model_types:
        return model_type in files.model_types, f"its registry ({files.path}/models/auto)"
    first = kb.first_release_knowing(model_type)
    version = parse_version(tf.version)
    why = f": {'; '.join(files.problems)}" if files is not None and files.problems else ""
    where = f"knowledge/transformers_registry.yaml (its own files could not be read{why})"
    if first is None or version is None:
        return None, where
    return version >= Version(first), where


def _transformers_knows(
    snap: Snapshot, m: ModelFacts, tf: Distribution | None, files: TransformersFiles | None
) -> Iterator[Finding]:
    if not m.model_type or tf is None or _remote_config(m):
        return  # packages.required reports a missing transformers; config.values the remote code
    known, where = _knows(files, tf, m.model_type)
    arch = f" ({', '.join(m.architectures)})" if m.architectures else ""
    if known:
        yield info(
            "weights.architecture-known", f"transformers {tf.version} knows model_type {m.model_type!r}{arch}: {where}"
        )
        return
    first = kb.first_release_knowing(m.model_type)
    newest = kb.releases_read()[-1]
    if known is None:
        yield info(
            "weights.architecture-unverified",
            f"the installed transformers {tf.version}'s registry could not be read, and "
            + (
                f"model_type {m.model_type!r} is in no transformers release read up to {newest}"
                if first is None
                else f"its version does not compare with {first}, the first release that knows {m.model_type!r}"
            )
            + ": not decided",
        )
        return
    since = (
        f"{m.model_type} first appears in transformers {first}"
        if first is not None and first != kb.releases_read()[0]
        else f"transformers {first} already knows {m.model_type}"
        if first is not None
        else f"no transformers release read (up to {newest}) knows it"
    )
    yield error(
        "weights.architecture-unknown",
        f"config.json's model_type {m.model_type!r}{arch} is not known to the installed transformers {tf.version} "
        f"(read from {where}): loading fails with {_UNKNOWN_TYPE.format(mt=m.model_type)!r}; {since}",
        fix=pip_install(snap, f"transformers>={first}")
        if first is not None
        else "install a transformers release that knows it (newer than " + newest + "), or the model's own code",
        location=_config(m),
        observed=f"transformers=={tf.version}",
        expected=f"transformers>={first}" if first is not None else f"a release newer than {newest}",
    )


def _engine_serves(
    snap: Snapshot, m: ModelFacts, name: str, dist: Distribution, served: ServedArchitectures
) -> Iterator[Finding]:
    if not served.architectures:
        yield warning(
            f"weights.{dist.key}-registry-unread",
            f"{name} {dist.version} is installed but its architecture registry could not be read "
            f"({'; '.join(served.problems) or served.path}): whether it serves this model is not decided",
            location=Location(served.path),
        )
        return
    missing = [a for a in m.architectures if a not in served.architectures]
    if not m.architectures or not missing:
        if m.architectures:
            yield info(
                "weights.architecture-served",
                f"{name} {dist.version} serves {', '.join(m.architectures)} (its registry: {served.path}, "
                f"{len(served.architectures)} architectures)",
            )
        return
    yield error(
        "weights.architecture-unserved",
        f"{name} {dist.version} does not serve {', '.join(missing)} (config.json's architectures): it is not in "
        f"{served.path} ({len(served.architectures)} architectures), so the server refuses the model at start-up "
        "('Model architectures [...] are not supported')",
        fix=pip_install(snap, "--upgrade", dist.key),
        location=_config(m),
        observed=f"{dist.key}=={dist.version}",
        expected=f"a {name} whose registry lists {missing[0]}",
    )


def _named_release_serves(snap: Snapshot, m: ModelFacts, engine: engines.Engine) -> Iterator[Finding]:
    """An engine not installed here whose version the launch file names (an image tag, ``pip install vllm==``).

    Answered from the generated table of that release line, which keeps the architectures its registry
    lists (tools/engine_tables.py); nothing when no version is named or the table keeps no list.
    """
    from autoglm_doctor.engines.launch import named_version

    config = snap.config
    if not m.architectures or config is None or not config.parsed or config.engine != engine.name:
        return
    version = named_version(snap, engine.name)
    line, _ = engines.table_for(engine.name, version) if version else ("", "")
    table = engines.load_table(engine.name, line) if line else {}
    listed = [str(a) for a in table.get("architectures", [])]
    release = str(table.get("version", ""))
    named_release, line_release = parse_version(version), parse_version(line)
    if not listed or named_release is None or line_release is None:
        return
    if named_release.release[: len(line_release.release)] != line_release.release:
        return  # only the nearest older table: its registry is not the named release's
    where = (
        f"knowledge/engines/{engine.name}-{line}.json ({engine.title} {release}'s registry, "
        f"{len(listed)} architectures)"
    )
    named = f"{engine.title} {version}, which the launch file names (not installed here),"
    missing = [a for a in m.architectures if a not in listed]
    if not missing:
        yield info("weights.architecture-served", f"{named} serves {', '.join(m.architectures)}: {where}")
        return
    yield error(
        "weights.architecture-unserved",
        f"{named} does not serve {', '.join(missing)} (config.json's architectures): it is not in {where}, so "
        "the server refuses the model at start-up ('Model architectures [...] are not supported')",
        fix=f"name a newer {engine.title} release in the launch file (one whose registry lists {missing[0]})",
        location=_config(m),
        observed=f"{engine.name}=={version}",
        expected=f"a {engine.title} whose registry lists {missing[0]}",
    )


def _uses_processor(m: ModelFacts) -> bool:
    names = set(m.folder_files)
    return m.vision or bool(
        {"preprocessor_config.json", "processor_config.json", "video_preprocessor_config.json"} & names
    )


def _processor_classes(
    m: ModelFacts, tf: Distribution | None, files: TransformersFiles | None, registry: str
) -> tuple[list[str], str]:
    """The classes the installed transformers maps model_type to in one processor registry."""
    if files is not None and files.model_types:  # its registry files were read
        return list(files.mappings.get(registry, {}).get(m.model_type, [])), f"{files.path}/models/auto"
    if registry != "video_processor" or tf is None:
        return [], ""
    since = kb.first_release_with_video_processor(m.model_type)
    version = parse_version(tf.version)
    if since is None or version is None or version < Version(since):
        return [], ""
    return [f"a video processor (since transformers {since})"], "knowledge/transformers_registry.yaml"


def _family_fix(snap: Snapshot, member: str) -> str:
    """Install ``member`` (torchvision, torchaudio) paired with the installed torch, in its build."""
    torch = snap.torch.version if snap.torch is not None else ""
    if not torch:
        return pip_install(snap, "torch", member)
    pin = kb.family_pin(member, torch, torch.partition("+")[2])
    index = kb.family_index(pin)
    return pip_install(snap, "--no-deps", pin) + (f" --index-url {index}" if index else "")


def _processor_needs(
    snap: Snapshot,
    m: ModelFacts,
    tf: Distribution | None,
    files: TransformersFiles | None,
    installed: dict[str, Distribution],
) -> Iterator[Finding]:
    if not m.model_type or not _uses_processor(m):
        return
    video, video_where = _processor_classes(m, tf, files, "video_processor")
    image, image_where = _processor_classes(m, tf, files, "image_processor")
    folder = set(m.folder_files)
    needs_torchvision = ""
    if video:
        needs_torchvision = (
            f"{m.model_type}'s processor includes a video processor ({_names(video)}, per {video_where}), "
            "and video processors need torchvision"
        )
    elif "video_preprocessor_config.json" in folder:
        needs_torchvision = "the folder has video_preprocessor_config.json, and video processors need torchvision"
    elif image and all(_torchvision_only(name) for name in image):
        needs_torchvision = (
            f"{m.model_type}'s image processor ({_names(image)}, per {image_where}) has only a torchvision backend"
        )
    if needs_torchvision and "torchvision" not in installed:
        yield error(
            "weights.processor-needs-torchvision",
            f"torchvision is not installed, but {needs_torchvision}: AutoProcessor.from_pretrained fails",
            fix=_family_fix(snap, "torchvision"),
            location=Location(str(Path(m.path) / "preprocessor_config.json")),
            observed="torchvision not installed",
            expected="torchvision built for the installed torch",
        )
    registry_read = files is not None and bool(files.model_types)
    if files is not None and registry_read:
        yield from _feature_extractor_needs(snap, m, files, installed)
    if (image or not registry_read) and "pillow" not in installed:
        yield error(
            "weights.processor-needs-pillow",
            f"Pillow is not installed, but {m.model_type} takes images (screenshots): its image processor "
            f"({_names(image) or 'from preprocessor_config.json'}) opens and resizes them with PIL",
            fix=pip_install(snap, "pillow"),
            location=Location(str(Path(m.path) / "preprocessor_config.json")),
            observed="pillow not installed",
            expected="pillow",
        )


def _feature_extractor_needs(
    snap: Snapshot, m: ModelFacts, files: TransformersFiles, installed: dict[str, Distribution]
) -> Iterator[Finding]:
    """The libraries the model type's feature extractor declares with ``@requires(backends=...)`` (audio)."""
    for name in files.mappings.get("feature_extractor", {}).get(m.model_type, []):
        cls = name.partition(":")[2] or name
        for backend in files.backends.get(cls, []):
            if backend == "vision" or backend in installed:  # vision: Pillow, decided below
                continue
            fix = _family_fix(snap, backend) if backend in kb.TORCH_FAMILY else pip_install(snap, backend)
            yield error(
                "weights.processor-needs-library",
                f"{backend} is not installed, but {m.model_type}'s feature extractor {cls} requires it "
                f"(@requires(backends=...) in {files.path}/models): AutoFeatureExtractor and AutoProcessor fail",
                fix=fix,
                location=Location(str(Path(m.path) / "preprocessor_config.json")),
                observed=f"{backend} not installed",
                expected=backend,
            )


def _names(classes: list[str]) -> str:
    return ", ".join(c.partition(":")[2] or c for c in classes)


def _torchvision_only(name: str) -> bool:
    backend, _, cls = name.partition(":")
    if cls:
        return backend == "torchvision"
    return name.endswith("Fast")  # transformers 4.x: (slow PIL class, fast torchvision class)


_SENTENCEPIECE_SUFFIXES = (".model", ".spm")


def _tokenizer_needs(snap: Snapshot, m: ModelFacts, installed: dict[str, Distribution]) -> Iterator[Finding]:
    present = set(m.tokenizer_files)
    if "tokenizer.json" in present:
        return  # the fast tokenizer loads from tokenizer.json with the tokenizers library alone
    models = sorted(n for n in present if n.endswith(_SENTENCEPIECE_SUFFIXES))
    tiktoken = sorted(n for n in present if n.endswith(".tiktoken"))
    cls = f" ({m.tokenizer_class})" if m.tokenizer_class else ""
    if models:
        where = Location(str(Path(m.path) / models[0]))
        if "sentencepiece" not in installed:
            yield error(
                "weights.tokenizer-needs-sentencepiece",
                f"the tokenizer{cls} is {models[0]} only (a SentencePiece model, no tokenizer.json), and sentencepiece "
                "is not installed: AutoTokenizer.from_pretrained fails (the slow tokenizer reads it with "
                "sentencepiece, and the fast one is converted from it)",
                fix=pip_install(snap, "sentencepiece"),
                location=where,
                observed="sentencepiece not installed",
                expected="sentencepiece",
            )
        if "protobuf" not in installed:
            yield warning(
                "weights.tokenizer-needs-protobuf",
                f"the tokenizer{cls} is {models[0]} only: converting it to a fast tokenizer (AutoTokenizer's "
                "default) reads the SentencePiece model with protobuf, which is not installed",
                fix=pip_install(snap, "protobuf"),
                location=where,
                observed="protobuf not installed",
                expected="protobuf",
            )
    if tiktoken and "tiktoken" not in installed:
        yield error(
            "weights.tokenizer-needs-tiktoken",
            f"the tokenizer{cls} is {tiktoken[0]} (a tiktoken vocabulary, no tokenizer.json), and tiktoken is not "
            "installed: AutoTokenizer.from_pretrained fails",
            fix=pip_install(snap, "tiktoken"),
            location=Location(str(Path(m.path) / tiktoken[0])),
            observed="tiktoken not installed",
            expected="tiktoken",
        )
