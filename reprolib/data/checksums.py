"""File checksums and the two errors every dataset loader raises.

The expected sha256 values are shipped with the package (here and in ``_nmnist_subset_sha256.py``),
never read from the data folder being checked: a corrupted or swapped data release cannot vouch for
itself. Values are those of the project's ``shared/data/SHA256SUMS`` (see its README).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

# Relative to the data root. Compressed files are what a data root holds; the uncompressed MNIST
# files are what torchvision writes into the cache (checked once after decompression).
EXPECTED_SHA256: dict[str, str] = {
    # Fashion-MNIST (canonical files, md5 = torchvision's list)
    "FashionMNIST/raw/train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "FashionMNIST/raw/train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "FashionMNIST/raw/t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "FashionMNIST/raw/t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    # MNIST (canonical files)
    "MNIST/raw/train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "MNIST/raw/train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "MNIST/raw/t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "MNIST/raw/t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    # ECG-QTDB, Yin et al. 2021 preprocessing (as shipped by brf-neurons)
    "ECG-QTDB/QTDB_train.mat": "72d1a10c96f1540880447e07256835d66da419c0b34f3dff495731a7928c5bc7",
    "ECG-QTDB/QTDB_test.mat": "916f11e21679a5b61988305bbb7cd1e6df8b34f1ed4a157a7a4e295d400ef232",
    # N-MNIST subset: the index (the recordings themselves are in _nmnist_subset_sha256.py)
    "N-MNIST-subset/index.csv": "a863cce88f391ffba18e27b7eb987212005ce245466389a4a48277977a875c99",
}

UNCOMPRESSED_SHA256: dict[str, str] = {
    "FashionMNIST/raw/t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "FashionMNIST/raw/t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    "FashionMNIST/raw/train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "FashionMNIST/raw/train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "MNIST/raw/t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "MNIST/raw/t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    "MNIST/raw/train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "MNIST/raw/train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
}


class ChecksumMismatchError(ValueError):
    """A data file's content is not the expected one (corrupted, truncated or a different release)."""

    def __init__(self, path: str | os.PathLike, expected: str, actual: str, algorithm: str = "sha256"):
        self.path, self.expected, self.actual, self.algorithm = str(path), expected, actual, algorithm
        super().__init__(
            f"Checksum mismatch for {self.path}: expected {algorithm} {expected}, got {actual}. "
            "The file is corrupted or not the expected release; replace it (see `reprolib data`)."
        )


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not where they are expected; the message says which files and where to get them."""


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


# (resolved path, size, mtime_ns) -> sha256. Hashing ~40 MB on every dataset construction would add up in a
# sweep; a file whose size and mtime are unchanged is not re-hashed within one process.
_VERIFIED: dict[tuple[str, int, int], str] = {}


def verify_file(path: str | os.PathLike, expected_sha256: str) -> None:
    """Raise :class:`ChecksumMismatchError` unless ``path`` has the expected sha256."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"Missing file {str(path)!r} (expected sha256 {expected_sha256}).")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    actual = _VERIFIED.get(key) or sha256_file(path)
    if actual != expected_sha256:
        raise ChecksumMismatchError(path, expected_sha256, actual)
    _VERIFIED[key] = actual


def verify_bytes(data: bytes, expected_sha256: str, path: str | os.PathLike) -> None:
    """Like :func:`verify_file` for bytes already read (the N-MNIST readers hash what they parse)."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256:
        raise ChecksumMismatchError(path, expected_sha256, actual)


def verify_files(root: str | os.PathLike, relative_paths, table: dict[str, str] = EXPECTED_SHA256) -> None:
    """Verify several files under ``root`` against ``table`` (all missing files are named in one error)."""
    root = Path(root)
    missing = [rel for rel in relative_paths if not (root / rel).is_file()]
    if missing:
        raise DatasetNotFoundError(f"Missing under {str(root)!r}: {', '.join(missing)}.")
    for rel in relative_paths:
        verify_file(root / rel, table[rel])
