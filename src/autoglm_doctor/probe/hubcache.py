"""Offline lookups in the Hugging Face hub cache, with the standard library only.

The cache layout (``huggingface_hub`` file_download / cache docs)::

    <cache>/models--<owner>--<name>/
        refs/main                 the commit hash "main" points to
        snapshots/<commit>/...    the files, as symlinks into ../../blobs/
        blobs/<etag>              content; LFS files are named by their sha256
        blobs/<etag>.incomplete   a download that has not finished

The cache folder is ``HF_HUB_CACHE``, else ``HUGGINGFACE_HUB_CACHE`` (older name), else
``HF_HOME/hub``, else ``XDG_CACHE_HOME/huggingface/hub``, else ``~/.cache/huggingface/hub``.
huggingface_hub itself is never imported, and nothing here touches the network.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from autoglm_doctor.safeio import folder_state, read_text

HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")
"""``owner/name`` as the hub spells repository ids."""


UNREADABLE_CACHE = "the cache folder"
"""How a problem of a cache that cannot be searched begins (``HubLookup.problem``; weights.path words it)."""


def looks_like_hub_id(text: str) -> bool:
    """``owner/name`` with no other path syntax (``./``, ``..``, ``~``, absolute paths)."""
    return bool(HUB_ID.match(text)) and ".." not in text and not text.endswith((".", "-"))


def cache_dir(env: Mapping[str, str]) -> Path:
    """The hub cache folder huggingface_hub would use with this environment."""
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if env.get(name):
            return Path(env[name]).expanduser()
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "hub"
    if env.get("XDG_CACHE_HOME"):
        return Path(env["XDG_CACHE_HOME"]).expanduser() / "huggingface" / "hub"
    return Path("~/.cache/huggingface/hub").expanduser()


def repo_folder_name(hub_id: str) -> str:
    """``zai-org/AutoGLM-Phone-9B`` -> ``models--zai-org--AutoGLM-Phone-9B``."""
    return "models--" + hub_id.replace("/", "--")


def hub_id_of(repo_dir: Path) -> str:
    """The hub id a ``models--owner--name`` folder holds."""
    return repo_dir.name.removeprefix("models--").replace("--", "/", 1)


@dataclass(frozen=True, slots=True)
class HubLookup:
    """Where a hub id lives in the local cache, if anywhere."""

    cache: str
    """The cache folder searched."""
    repo_dir: str = ""
    """``<cache>/models--owner--name`` when it exists."""
    revision: str = ""
    """The commit whose snapshot was chosen."""
    snapshot: str = ""
    """The snapshot folder (the model folder) when one was found."""
    problem: str = ""
    """Why no snapshot was chosen, or what is odd about the choice."""


COMMIT = re.compile(r"^[0-9a-f]{40}$")
"""A full commit hash: a revision that needs no ref (huggingface_hub's REGEX_COMMIT_HASH)."""


def resolve(hub_id: str, env: Mapping[str, str], ref: str = "main") -> HubLookup:
    """Find ``hub_id``'s snapshot for ``ref`` in the cache, offline, exactly as huggingface_hub does.

    ``hf_hub_download`` without the network (``_hf_hub_download_to_cache_dir``, huggingface_hub
    0.2x-1.x) takes a revision that is a commit hash as it is, else reads ``refs/<revision>``
    verbatim (no stripping), and looks in ``snapshots/<commit>/``; without the ref it raises
    ``LocalEntryNotFoundError``, which transformers reports as "couldn't find them in the cached
    files". It never guesses from the other snapshots, so neither does this: no usable ref is a
    problem with no snapshot (weights.path fails), and the other snapshots are only named.
    """
    cache = cache_dir(env)
    repo = cache / repo_folder_name(hub_id)
    found, why_not = folder_state(repo)
    if why_not:
        return HubLookup(cache=str(cache), problem=f"{UNREADABLE_CACHE} {repo} cannot be read: {why_not}")
    if not found:
        return HubLookup(cache=str(cache), problem=f"{repo.name} is not in the cache {cache}")
    snapshots = repo / "snapshots"
    if COMMIT.match(ref):
        revision = ref
    else:
        try:
            revision = read_text(repo / "refs" / ref, "model metadata", 1 << 16, errors="replace")
        except OSError:
            revision = ""
    found, why_not = folder_state(snapshots / revision) if revision else (False, "")
    if found:
        return HubLookup(cache=str(cache), repo_dir=str(repo), revision=revision, snapshot=str(snapshots / revision))
    if why_not:
        shown = revision if len(revision) <= 64 else revision[:64] + "..."
        return HubLookup(
            cache=str(cache),
            repo_dir=str(repo),
            revision=revision.strip(),
            problem=f"snapshots/{shown} (named by refs/{ref}) cannot be read: {why_not}",
        )
    try:
        others = sorted(p.name for p in snapshots.iterdir() if p.is_dir())
    except OSError:
        others = []
    there = f" (snapshots/ holds {', '.join(o[:12] for o in others[:3])})" if others else ""
    if not revision:
        why = (
            f"there is no refs/{ref}, so transformers (offline) cannot tell which snapshot {ref!r} is and fails "
            f'with "couldn\'t find them in the cached files"{there}'
        )
    elif revision != revision.strip():
        why = f"refs/{ref} holds {revision!r} with whitespace around it: huggingface_hub reads it verbatim{there}"
    else:
        why = f"refs/{ref} names {revision}, which has no snapshot{there}"
    return HubLookup(cache=str(cache), repo_dir=str(repo), revision=revision.strip(), problem=why)


def repo_dir_containing(folder: Path) -> Path | None:
    """The ``models--owner--name`` folder when ``folder`` is one of its snapshots."""
    parent = folder.parent
    if parent.name == "snapshots" and parent.parent.name.startswith("models--"):
        return parent.parent
    return None


def incomplete_downloads(folder: Path, repo_dir: Path | None) -> list[tuple[str, int]]:
    """``*.incomplete`` files an interrupted download left: (path relative to the model or cache folder, bytes).

    Looks in the cache repo's ``blobs/`` and in the ``.cache/huggingface/download/`` folder that
    ``hf download --local-dir`` keeps inside the model folder.
    """
    found: list[tuple[str, int]] = []
    places = []
    if repo_dir is not None:
        places.append((repo_dir / "blobs", repo_dir))
    places.append((folder / ".cache" / "huggingface" / "download", folder))
    for place, base in places:
        try:
            walker = list(os.walk(place))
        except OSError:
            continue
        for root, _dirs, names in walker:
            for name in names:
                if name.endswith(".incomplete"):
                    path = Path(root) / name
                    try:
                        size = path.stat().st_size
                    except OSError:
                        size = 0
                    found.append((path.relative_to(base).as_posix(), size))
    return sorted(found)


def local_dir_etags(folder: Path) -> dict[str, str]:
    """sha256 etags recorded by ``hf download --local-dir`` (``.cache/huggingface/download/<file>.metadata``).

    Each metadata file holds the commit hash, the etag and a timestamp, one per line; for LFS
    files the etag is the content's sha256.
    """
    base = folder / ".cache" / "huggingface" / "download"
    out: dict[str, str] = {}
    if not base.is_dir():
        return out
    for root, _dirs, names in os.walk(base):
        for name in names:
            if not name.endswith(".metadata"):
                continue
            path = Path(root) / name
            try:
                lines = read_text(path, "model metadata", 1 << 16, errors="replace").splitlines()
            except OSError:
                continue
            etag = lines[1].strip().strip('"').lower() if len(lines) > 1 else ""
            if re.fullmatch(r"[0-9a-f]{64}", etag):
                out[path.relative_to(base).as_posix().removesuffix(".metadata")] = etag
    return out
