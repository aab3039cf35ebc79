"""What the installed libraries state about themselves, read from their files as text by the probe.

transformers names the model types it knows (``models/auto/configuration_auto.py``, or the
generated ``auto_mappings.py`` of 5.x), the processor, image-processor, video-processor and
feature-extractor classes of each, its own dependency floors (``utils/import_utils.py``'s
``ACCELERATE_MIN_VERSION`` and friends) and its extras' ranges (``dependency_versions_table.py``).
The serving engines' registries (the architectures each serves) are read on the host side by the
engine's own module (``Engine.read_registry``), in the first folder of the target's search path
that holds the engine's package, and kept here, by engine name. Nothing is imported; a library that
is absent has no entry, and one whose files could not be read says so in ``problems``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True, slots=True)
class TransformersFiles:
    """Facts read from the installed transformers' own files."""

    path: str
    """The package folder that was read."""
    files: list[str] = field(default_factory=list)
    """Every file that was read."""
    model_types: list[str] = field(default_factory=list)
    """Every model_type this transformers knows (``CONFIG_MAPPING_NAMES``), sorted."""
    mappings: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    """Registry -> model_type -> class names. Registries: ``processor``, ``image_processor``,
    ``video_processor``, ``feature_extractor``. A class whose backend the registry names is
    written ``backend:Class`` (``torchvision:Glm4vVideoProcessor``)."""
    min_versions: dict[str, str] = field(default_factory=dict)
    """``ACCELERATE_MIN_VERSION = "0.26.0"`` as ``{"accelerate": "0.26.0"}`` (lower-cased prefix)."""
    dependencies: dict[str, str] = field(default_factory=dict)
    """``dependency_versions_table.py``: name -> requirement (``accelerate>=0.26.0``)."""
    backends: dict[str, list[str]] = field(default_factory=dict)
    """Feature-extractor class -> the backends its ``@requires(backends=...)`` decorator names
    (``ASTFeatureExtractor: [torch]``), read from the model types' feature_extraction_*.py."""
    problems: list[str] = field(default_factory=list)
    """Files that were missing or held nothing recognisable."""

    def for_model(self, model_type: str) -> TransformersFiles:
        """The facts the snapshot keeps: the processor registries' entries of this model type only.

        The full registries are about 50 KB of JSON; a snapshot is about one model, and fleets keep
        thousands of snapshots. The list of model types and the floors are kept whole.
        """
        mappings = {
            registry: {model_type: classes} if model_type in entries and (classes := entries[model_type]) else {}
            for registry, entries in self.mappings.items()
        }
        named = {c.partition(":")[2] or c for entries in mappings.values() for cs in entries.values() for c in cs}
        backends = {cls: found for cls, found in self.backends.items() if cls in named}
        return replace(self, mappings=mappings, backends=backends)


@dataclass(frozen=True, slots=True)
class ServedArchitectures:
    """The architectures a serving engine can serve, read from its files by its module (``Engine.read_registry``)."""

    path: str
    """The registry file (vLLM) or models folder (SGLang) that was read."""
    architectures: list[str] = field(default_factory=list)
    """Architecture names as config.json's ``architectures`` writes them."""
    problems: list[str] = field(default_factory=list)
    """Why nothing could be read."""


@dataclass(frozen=True, slots=True)
class LibraryFacts:
    """The libraries' statements about themselves; an absent library has no entry."""

    transformers: TransformersFiles | None = None
    """The installed transformers."""
    engines: dict[str, ServedArchitectures] = field(default_factory=dict)
    """Engine name -> the architectures the installed engine serves (read on the host side)."""
