"""Files written whole: readers see the old file or the new one, never half of one (a temporary
beside the file, renamed or linked into place). Records, job lists, tables, states and reports all
write so."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import IO


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def written_beside(path: Path, text: str | IO[str], durable: bool = True) -> str:
    """A temporary file beside `path`, holding `text`, or what is left to read of a file (on disk,
    when durable)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            if isinstance(text, str):
                f.write(text)
            else:
                shutil.copyfileobj(text, f)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def write_atomic(path: Path, text: str | IO[str], durable: bool = True) -> None:
    """Write `text` so that readers see the old file or the new one, never half of one.
    durable=False: no fsync, for a file that need not outlive a crash of the machine."""
    tmp = written_beside(path, text, durable)
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def create_atomic(path: Path, text: str | IO[str], durable: bool = True) -> bool:
    """Write `text` (or a file's text) to `path` whole, only if there is no such file: False when there is one.
    durable=False: no fsync, for a file that need not outlive a crash of the machine."""
    tmp = written_beside(path, text, durable)
    try:
        os.link(tmp, path)  # atomic, and fails where the file exists
        return True
    except FileExistsError:
        return False
    finally:
        Path(tmp).unlink(missing_ok=True)
