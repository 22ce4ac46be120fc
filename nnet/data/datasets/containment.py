"""Whether a file really lies inside a dataset root, once every symbolic link on its way is resolved.

A path written inside the root (``Distortion1/x.bmp``) can still lead elsewhere when ``x.bmp`` or one
of its folders is a link; ``..`` and absolute paths are refused by the readers before this check.
"""

import os
from pathlib import Path

from nnet.data.problems import ProblemList

OUTSIDE_FIX = ("move the file into the root, point the dataset's folder setting (data.root, data.ref_root) at "
               "the real folder, or set data.allow_outside_root=True if the link is intended")


class RootGuard:
    """Checks paths against the real location of one root folder (links resolved)."""

    def __init__(self, root: str | os.PathLike, allow_outside: bool = False) -> None:
        self.root = Path(root)
        self.allow_outside = allow_outside
        self.real_root = Path(os.path.realpath(self.root))
        self._real_folders: dict[Path, Path] = {}

    def real_location_outside(self, path: Path, is_link: bool | None = None) -> Path | None:
        """Where ``path`` really is when that is outside the root (None when inside, or when allowed).

        ``is_link`` saves a system call when the caller already knows (``os.DirEntry.is_symlink``).
        """
        if self.allow_outside:
            return None
        folder = self._real_folder(path.parent)
        linked = path.is_symlink() if is_link is None else is_link
        real = Path(os.path.realpath(path)) if linked else folder / path.name
        return None if real.is_relative_to(self.real_root) else real

    def check(self, path: Path, problems: ProblemList, where: str | None = None,
              is_link: bool | None = None) -> bool:
        """Add a problem (at ``where``, default ``path``) when ``path`` leads outside; True when it does not."""
        real = self.real_location_outside(path, is_link)
        if real is None:
            return True
        prefix = f"{where}: {path}" if where else str(path)
        problems.add(f"{prefix} is a link to {real}, outside the dataset root {self.root}; {OUTSIDE_FIX}")
        return False

    def _real_folder(self, folder: Path) -> Path:
        real = self._real_folders.get(folder)
        if real is None:
            real = self._real_folders[folder] = Path(os.path.realpath(folder))
        return real
