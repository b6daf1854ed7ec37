"""A run's output files, replaced all together or not at all.

Each output is written under a hidden partial name in its folder (``.overlay.partial.mp4``
for ``overlay.mp4``: the extension stays, since OpenCV picks the container from it) and
renamed into place by :meth:`OutputSet.commit` at the end of the run, a Ctrl-C or SIGTERM
included. A run that fails, or a process killed outright, never touches the previous run's
files: :meth:`OutputSet.discard` (or the next run) removes the partial ones. ``os.replace``
is atomic within a folder, so a reader sees either the old file or the new one; the files
are renamed with ``stats.json`` last, so a folder whose stats.json is new has the new
files of the whole run.

An output may be a folder (``overlays/``, one image per photo): it is written as
``.overlays.partial`` and swapped in by two renames (the old one aside, the new one in),
the old one deleted only once the new one is in place.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

from realtime.errors import RealtimeError

log = logging.getLogger(__name__)


class OutputError(RealtimeError):
    """The output folder cannot be made or written to."""


def partial_path(path: Path) -> Path:
    """Where ``path`` is written until it is committed: hidden, same folder, same suffix."""
    path = Path(path)
    return path.with_name(f".{path.stem}.partial{path.suffix}")


def _remove(path: Path) -> None:
    """Delete a file or a folder; nothing when there is none."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _replace(partial: Path, path: Path) -> None:
    """``os.replace`` for a file; for a folder, the old one aside, the new one in, the old
    one deleted (a folder cannot be renamed over a non-empty one)."""
    if not partial.is_dir():
        os.replace(partial, path)
        return
    old = path.with_name(f".{path.name}.old")
    _remove(old)
    if path.exists():
        os.replace(path, old)
    os.replace(partial, path)
    _remove(old)


def prepare_folder(folder: Path, what: str = "the output folder",
                   option: str = "--output") -> Path:
    """Make ``folder`` (and its parents) and check that a file can be created in it;
    :class:`OutputError` in one line otherwise (instead of a bare PermissionError at the
    end of a run). ``what``/``option`` name it in the message."""
    folder = Path(folder)
    probe = folder / f".handmesh-write-test-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.touch()
        probe.unlink()
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise OutputError(f"cannot write to {what} {folder} ({why}): choose another "
                          f"{option}, or make it writable") from exc
    return folder


def prepare_file(path: Path, option: str) -> Path:
    """A file written at the end of a run (``option`` names it): its folder is writable and
    it is not a folder, checked before the run instead of failing after it."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{option} {path} is a folder: give a file name inside it")
    prepare_folder(path.parent, "the folder of", option)
    return path


class OutputSet:
    """The named files of one run (``{"hands": folder/"hands.jsonl", ...}``).

    Writers write to :meth:`partial`; :meth:`commit` renames what was written into place
    (in the order given, so put the file that describes the others last) and removes the
    set's files this run did not write, so that the folder never mixes two runs.
    """

    def __init__(self, paths: Mapping[str, Path]) -> None:
        self.paths = {key: Path(p) for key, p in paths.items()}
        self.done = False

    def partial(self, key: str) -> Path:
        return partial_path(self.paths[key])

    def commit(self, written: Iterable[str]) -> None:
        """Rename the ``written`` outputs into place; delete the others' old files."""
        written = set(written)
        try:
            for key, path in self.paths.items():
                if key in written:
                    _replace(self.partial(key), path)
                else:
                    _remove(path)
                    _remove(self.partial(key))
        except OSError as exc:
            raise OutputError(f"cannot move the results into place in "
                              f"{next(iter(self.paths.values())).parent} ({exc.strerror}): "
                              "is the folder still writable?") from exc
        finally:
            self.done = True

    def discard(self) -> None:
        """Delete the partial files (a failed run): the previous run's files stay as they are."""
        if self.done:
            return
        self.done = True
        for key in self.paths:
            with contextlib.suppress(OSError):
                _remove(self.partial(key))
