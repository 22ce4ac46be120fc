"""Find the image files a label table names, as the real datasets spell them.

TID2013's tables and folders disagree on case (``i01_01_1.bmp`` names the file ``I01_01_1.bmp``, and
``I01.BMP`` sits beside ``i25.bmp``), and CSIQ's download keeps its distorted images in one folder per
distortion (``dst_imgs/awgn/1600.AWGN.1.png``) where pyiqa's table names them flat (``1600.AWGN.1.png``).
"""

import os
from pathlib import Path, PurePath


class FileFinder:
    """Looks files up under ``folder`` by relative path: exactly as written, and optionally ignoring
    case and/or also in the folder's immediate subfolders. Folder listings are read once."""

    def __init__(self, folder: Path, ignore_case: bool = False, search_subfolders: bool = False) -> None:
        self.folder = folder
        self.ignore_case = ignore_case
        self.search_subfolders = search_subfolders
        self._listings: dict[Path, dict[str, list[os.DirEntry]]] = {}
        self._exists: dict[Path, bool] = {}

    def find(self, relative: str | PurePath) -> list[Path]:
        """Every file that ``relative`` may name: none, one, or several when the name is ambiguous
        (same name in two subfolders, or two spellings of one name). An exact match always wins."""
        parts = PurePath(relative).parts
        found = self._find_in(self.folder, parts)
        if not found and self.search_subfolders and len(parts) == 1:
            for entries in self._listing(self.folder).values():
                for entry in entries:
                    if entry.is_dir():
                        found += self._find_in(Path(entry.path), parts)
        return found

    def _find_in(self, folder: Path, parts: tuple[str, ...]) -> list[Path]:
        exact = folder.joinpath(*parts)
        if self._is_file(exact):
            return [exact]
        if not self.ignore_case:
            return []
        paths = [folder]
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            paths = [Path(entry.path) for path in paths for entry in self._listing(path).get(part.casefold(), [])
                     if (entry.is_file() if last else entry.is_dir())]
        return paths

    def _is_file(self, path: Path) -> bool:
        exists = self._exists.get(path)
        if exists is None:
            exists = self._exists[path] = path.is_file()
        return exists

    def _listing(self, folder: Path) -> dict[str, list[os.DirEntry]]:
        listing = self._listings.get(folder)
        if listing is None:
            listing = self._listings[folder] = {}
            try:
                with os.scandir(folder) as entries:
                    for entry in entries:
                        if not entry.name.startswith("."):
                            listing.setdefault(entry.name.casefold(), []).append(entry)
            except OSError:  # missing or unreadable: nothing is found there; the caller reports the file
                pass
        return listing
