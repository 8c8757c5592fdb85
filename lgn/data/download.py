"""Find dataset files on disk, or download them once into a cache with checksum verification.

Search order for dataset ``name`` (first directory holding every needed file wins):

1. ``data_dir/name`` and ``data_dir`` when a ``data_dir`` is given;
2. otherwise the cache ``$LGN_DATA/name`` (or ``~/.cache/lgn/name`` when ``LGN_DATA`` is unset),
   then the system directory ``/usr/share/datasets/name`` (Debian's ``dataset-*`` packages).

Missing files are downloaded into ``data_dir/name`` (or the cache) from the official location or a
``mirror`` base URL, verified against the published checksum, and written atomically
(temporary file + rename), so an interrupted or corrupted download never looks like a good file.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .dataset import DatasetError

__all__ = ["Remote", "cache_root", "search_dirs", "find_files", "fetch", "fetch_files"]

#: Where Debian's ``dataset-*`` packages install data (e.g. ``dataset-fashion-mnist``).
SYSTEM_ROOT = Path("/usr/share/datasets")
#: Seconds without data before a download is abandoned.
TIMEOUT_S = 60
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Remote:
    """Where a dataset's files are published: a base URL and ``{filename: 'md5:HEX' | 'sha256:HEX'}``."""

    base_url: str
    checksums: dict[str, str]


def cache_root() -> Path:
    """Return the download cache: ``$LGN_DATA`` if set, else ``~/.cache/lgn``."""
    root = os.environ.get("LGN_DATA")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "lgn"


def search_dirs(name: str, data_dir: str | os.PathLike | None) -> list[Path]:
    """Return the directories searched for dataset ``name``, in order (see the module docstring)."""
    if data_dir is not None:
        return [Path(data_dir).expanduser() / name, Path(data_dir).expanduser()]
    return [cache_root() / name, SYSTEM_ROOT / name]


def download_dir(name: str, data_dir: str | os.PathLike | None) -> Path:
    """Return the directory downloads of dataset ``name`` go to."""
    return (Path(data_dir).expanduser() if data_dir is not None else cache_root()) / name


def find_files(dirs: Sequence[Path], needed: Sequence[Sequence[str]]) -> list[Path] | None:
    """Return, from the first directory holding one alternative of every group, the matched paths.

    ``needed`` lists groups of acceptable file names, e.g. ``[("a.gz", "a"), ("b.gz", "b")]``.
    """
    for directory in dirs:
        found = [next((directory / n for n in group if (directory / n).is_file()), None) for group in needed]
        if all(found):
            return found
    return None


def fetch(url: str, dest: Path, checksum: str) -> Path:
    """Download ``url`` to ``dest`` atomically, verifying ``checksum`` (``'md5:HEX'``/``'sha256:HEX'``).

    Raises
    ------
    DatasetError
        On an HTTP or network error, or a checksum mismatch (the partial file is removed).
    """
    algorithm, _, expected = checksum.partition(":")
    if algorithm not in ("md5", "sha256") or not expected:
        raise DatasetError(f"bad checksum spec {checksum!r} for {url}: expected 'md5:HEX' or 'sha256:HEX'")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    except OSError as error:
        raise DatasetError(f"cannot write to {dest.parent} ({error.strerror or error}); "
                           "pass another data directory") from None
    hint = f" (or place {dest.name} in {dest.parent} yourself)"
    try:
        digest = hashlib.new(algorithm)
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            _copy(response, out, digest, url)
        if digest.hexdigest() != expected.lower():
            raise DatasetError(f"download of {url} is corrupt: {algorithm} {digest.hexdigest()}, "
                               f"expected {expected.lower()} (file discarded)")
        os.replace(tmp, dest)
    except urllib.error.HTTPError as error:
        error.close()
        raise DatasetError(f"cannot download {url}: HTTP {error.code} {error.reason}{hint}") from None
    except urllib.error.URLError as error:
        raise DatasetError(f"cannot download {url}: {error.reason}{hint}") from None
    except http.client.HTTPException as error:
        raise DatasetError(f"cannot download {url}: {type(error).__name__} {error}{hint}") from None
    except OSError as error:
        raise DatasetError(f"cannot download {url} to {dest}: {error.strerror or error}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def _copy(response, out, digest, url: str) -> None:
    """Stream ``response`` into ``out`` and ``digest``, with a progress bar on an interactive stderr."""
    from tqdm import tqdm

    total = response.headers.get("Content-Length")
    with tqdm(total=int(total) if total else None, unit="B", unit_scale=True, disable=None,
              desc=url.rsplit("/", 1)[-1], leave=False) as progress:
        while chunk := response.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
            progress.update(len(chunk))


def fetch_files(name: str, remote: Remote, filenames: Sequence[str], data_dir,
                mirror: str | None) -> list[Path]:
    """Return local paths of ``filenames`` of dataset ``name``, downloading those not yet present."""
    target = download_dir(name, data_dir)
    base = (mirror or remote.base_url).rstrip("/")
    paths = []
    for filename in filenames:
        path = target / filename
        if not path.is_file():
            fetch(f"{base}/{filename}", path, remote.checksums[filename])
        paths.append(path)
    return paths


def missing_message(name: str, what: str, dirs: Sequence[Path], how: str) -> str:
    """One line saying which files of ``name`` are missing, where we looked, and how to get them."""
    looked = ", ".join(str(d) for d in dirs)
    return f"{name}: {what} not found in {looked}; {how}"
