"""What each dataset needs on disk, where it comes from, and how to check what is there.

One entry per dataset name of :data:`reprolib.data.DATASETS`. The loaders use these entries for their
"not found" messages and ``reprolib data`` uses them for its report, so the two never disagree.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from .checksums import EXPECTED_SHA256, ChecksumMismatchError, DatasetNotFoundError, verify_file


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    files: tuple[str, ...]  # relative to the data root
    source: str
    license: str
    how_to_get: str
    checksum_note: str = "sha256 shipped with reprolib"
    subset_note: str | None = None  # set when the expected files are a known subset of the dataset
    test_size: int | None = None  # samples in the test split, where the data set fixes it
    # a measured property of the files that bounds any comparison made on them (a sentence, no numbers)
    caveat: str | None = None
    extra: dict = field(default_factory=dict)

    def missing_message(self, root: Path | None, missing: list[str] | None = None) -> str:
        where = str(root) if root is not None else "<no data root: set REPROLIB_DATA or pass root=...>"
        missing = self.files if missing is None else missing
        return (
            f"Dataset {self.name!r} not found under {where}. Expected files:\n"
            + "".join(f"  {where}/{rel}\n" for rel in missing)
            + f"Source: {self.source}\nLicense: {self.license}\nHow to get it: {self.how_to_get}"
        )


def _mnist_like(name: str, folder: str, source: str, license: str) -> DatasetInfo:
    files = tuple(
        f"{folder}/raw/{stem}.gz"
        for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    )
    return DatasetInfo(
        name=name, files=files, source=source, license=license, test_size=10_000,
        how_to_get=(
            f"copy the four canonical .gz files into <root>/{folder}/raw/, or run `reprolib data --download {name}` "
            "(torchvision downloads into the reprolib cache and checks md5s)."
        ),
    )


CATALOG: dict[str, DatasetInfo] = {
    "mnist": _mnist_like(
        "mnist", "MNIST", "http://yann.lecun.com/exdb/mnist/ (torchvision mirrors)",
        "CC BY-SA 3.0 (Yann LeCun and Corinna Cortes)",
    ),
    "fashion-mnist": _mnist_like(
        "fashion-mnist", "FashionMNIST", "https://github.com/zalandoresearch/fashion-mnist", "MIT (Zalando SE)",
    ),
    "nmnist": DatasetInfo(
        name="nmnist",
        files=("NMNIST/train.zip", "NMNIST/Train/", "NMNIST/test.zip", "NMNIST/Test/"),
        source="https://www.garrickorchard.com/datasets/n-mnist (Tonic: tonic.datasets.NMNIST, Mendeley Data 468j46mzdv)",
        license="not stated in the sources available offline (see the N-MNIST page)",
        how_to_get=(
            "Tonic's layout: <root>/NMNIST/{train,test}.zip plus the extracted Train/ and Test/ folders "
            "(>= 10,000 .bin files each), or run `reprolib data --download nmnist` (Tonic downloads ~1 GB into the cache)."
        ),
        checksum_note="md5 of the zips as listed by Tonic (no per-file checksums exist)",
        test_size=10_000,
    ),
    "nmnist-subset": DatasetInfo(
        name="nmnist-subset",
        files=("N-MNIST-subset/index.csv", "N-MNIST-subset/NMNISTsmall/"),
        source="github.com/bamsumit/slayerPytorch @01beeeb, test/test_files/NMNISTsmall/",
        license="repository GPL-3.0; N-MNIST's own license not stated",
        how_to_get="copy the project's shared/data/N-MNIST-subset folder to <root>/N-MNIST-subset (no download exists).",
        subset_note="1,000 train + 100 test of 70,000 recordings (MNIST train 0..999, test 0..99)",
        test_size=100,
        caveat=("Within every digit class the subset's test recordings sit higher on the sensor than its training "
                "recordings, by more than the MNIST digits they were recorded from do "
                "(reprolib.data.nmnist.centroid_offsets; the SRC Table 2 page measures the offset and what it costs "
                "the trained networks)."),
    ),
    "shd": DatasetInfo(
        name="shd",
        files=("SHD/shd_train.h5", "SHD/shd_test.h5"),
        source="https://zenkelab.org/datasets/shd_{train,test}.h5.zip (Cramer et al. 2020; Tonic: tonic.datasets.SHD)",
        license="CC BY 4.0",
        how_to_get=(
            "put shd_train.h5 and shd_test.h5 into <root>/SHD/ (Tonic's layout), or run "
            "`reprolib data --download shd` (Tonic downloads and checks the zips' md5 into the cache)."
        ),
        checksum_note="no sha256 known offline; Tonic checks the zips' md5 when it downloads",
        test_size=2_264,
    ),
    "ecg-qtdb": DatasetInfo(
        name="ecg-qtdb",
        files=("ECG-QTDB/QTDB_train.mat", "ECG-QTDB/QTDB_test.mat"),
        source="github.com/quantling/brf-neurons @6b50a35, experiments/ecg/data/ (= byin-cwi/Efficient-spiking-networks data/)",
        license="MIT (repositories); recordings from PhysioNet's QT Database",
        how_to_get="download the two .mat files from the brf-neurons repository into <root>/ECG-QTDB/ (no automatic download).",
    ),
}


@dataclass
class Availability:
    name: str
    status: str  # "found" | "subset" | "missing" | "corrupt"
    location: str | None
    checked: int  # number of files whose checksum was verified
    detail: str


# Sub-folder of the reprolib cache where each downloadable dataset's explicit download goes
# (torchvision / Tonic layouts, see vision.py, nmnist.py, shd.py).
DOWNLOAD_SUBFOLDER = {"mnist": "torchvision", "fashion-mnist": "torchvision", "nmnist": "tonic", "shd": "tonic"}


def download_location(name: str, cache_root: Path | None = None) -> Path | None:
    """Where ``download=True`` puts dataset ``name`` (``None`` when it cannot be downloaded)."""
    from reprolib.paths import cache_dir

    sub = DOWNLOAD_SUBFOLDER.get(name)
    if sub is None:
        return None
    return Path(cache_root) / sub if cache_root is not None else cache_dir(sub)


def check_availability(name: str, root: Path | None, cache_root: Path | None = None) -> Availability:
    """Look for ``name`` under ``root``, then where a download would have put it, and verify checksums.

    ``cache_root`` is the reprolib cache (default ``reprolib.paths.cache_dir()``); the dataset's download
    sub-folder (``torchvision/`` or ``tonic/``) is added here.
    """
    if name not in CATALOG:
        raise ValueError(f"Unknown dataset {name!r}; expected one of {', '.join(CATALOG)}.")
    info = CATALOG[name]
    downloads = download_location(name, cache_root)
    candidates = [r for r in (root, downloads) if r is not None]
    checker = _CHECKERS.get(name, _check_sha256_files)
    first_missing: str | None = None
    for candidate in candidates:
        try:
            checked, detail = checker(info, candidate)
        except ChecksumMismatchError as error:
            return Availability(name, "corrupt", str(candidate), 0, str(error))
        except DatasetNotFoundError as error:
            first_missing = first_missing or str(error)  # the data root's message: that is where files belong
            continue
        status = "subset" if info.subset_note else "found"
        return Availability(name, status, str(candidate), checked, detail)
    detail = first_missing or info.missing_message(root)
    if root is not None and downloads is not None:
        detail += f"\n(also looked for a previous download in {downloads})"
    return Availability(name, "missing", None, 0, detail)


def _check_sha256_files(info: DatasetInfo, root: Path) -> tuple[int, str]:
    missing = [rel for rel in info.files if not (root / rel).is_file()]
    if missing:
        raise DatasetNotFoundError(info.missing_message(root, missing))
    for rel in info.files:
        verify_file(root / rel, EXPECTED_SHA256[rel])
    return len(info.files), "all sha256 match"


def _check_nmnist_subset(info: DatasetInfo, root: Path) -> tuple[int, str]:
    from ._nmnist_subset_sha256 import NMNIST_SUBSET_SHA256

    folder = root / "N-MNIST-subset"
    index = folder / "index.csv"
    if not index.is_file():
        raise DatasetNotFoundError(info.missing_message(root))
    verify_file(index, EXPECTED_SHA256["N-MNIST-subset/index.csv"])
    with open(index, newline="") as handle:
        rows = list(csv.DictReader(handle))
    missing = [row["file"] for row in rows if not (folder / row["file"]).is_file()]
    if missing:
        raise DatasetNotFoundError(
            info.missing_message(root, [f"N-MNIST-subset/{rel}" for rel in missing[:10]])
            + (f"\n({len(missing)} recordings missing in all)" if len(missing) > 10 else "")
        )
    for row in rows:
        verify_file(folder / row["file"], NMNIST_SUBSET_SHA256[Path(row["file"]).name])
    n_train = sum(row["split"] == "train" for row in rows)
    return len(rows) + 1, f"{n_train} train + {len(rows) - n_train} test recordings; {info.subset_note}"


def _check_nmnist(info: DatasetInfo, root: Path) -> tuple[int, str]:
    from .base import import_tonic  # noqa: PLC0415

    import_tonic()
    from tonic.datasets import NMNIST
    from tonic.download_utils import check_md5

    folder = root / "NMNIST"
    problems = []
    for zip_name, md5, sub in ((NMNIST.train_filename, NMNIST.train_md5, "Train"), (NMNIST.test_filename, NMNIST.test_md5, "Test")):
        enough_files = len(list((folder / sub).glob("**/*.bin"))) >= 10_000
        if not (folder / zip_name).is_file():
            problems.append(f"NMNIST/{zip_name}")
        if not enough_files:
            problems.append(f"NMNIST/{sub}/ (the extracted .bin files, >= 10,000)")
        if not problems and not check_md5(str(folder / zip_name), md5):
            from tonic.download_utils import calculate_md5

            raise ChecksumMismatchError(folder / zip_name, md5, calculate_md5(str(folder / zip_name)), algorithm="md5")
    if problems:
        raise DatasetNotFoundError(info.missing_message(root, problems))
    return 2, "zip md5s match Tonic's"


def _check_shd(info: DatasetInfo, root: Path) -> tuple[int, str]:
    missing = [rel for rel in info.files if not (root / rel).is_file()]
    if missing:
        raise DatasetNotFoundError(info.missing_message(root, missing))
    return 0, "files present; " + info.checksum_note


def _check_torchvision_files(info: DatasetInfo, root: Path) -> tuple[int, str]:
    """The ``.gz`` files (a data root, a download), or else the decompressed copy that loading them leaves in the
    reprolib cache (:func:`reprolib.data.vision.prepare_torchvision_root`): the loader reads that copy without
    the data root, so the status must find it too."""
    from .checksums import UNCOMPRESSED_SHA256  # noqa: PLC0415
    from .vision import VERIFIED_MARKER  # noqa: PLC0415

    try:
        return _check_sha256_files(info, root)
    except DatasetNotFoundError:
        decompressed = [rel[: -len(".gz")] for rel in info.files]
        if not (all((root / rel).is_file() for rel in decompressed)
                and (root / Path(decompressed[0]).parent / VERIFIED_MARKER).is_file()):
            raise
    for rel in decompressed:
        verify_file(root / rel, UNCOMPRESSED_SHA256[rel])
    return len(decompressed), "decompressed copy in the reprolib cache, sha256 match"


_CHECKERS = {"nmnist-subset": _check_nmnist_subset, "nmnist": _check_nmnist, "shd": _check_shd,
             "mnist": _check_torchvision_files, "fashion-mnist": _check_torchvision_files}
