"""``reprolib data``: which datasets are found, missing or a subset, with checksums verified.

Nothing is downloaded unless ``--download`` is given; then only the named (or all missing) datasets
that torchvision / Tonic can fetch are downloaded, into the reprolib cache (never the data root).
Exit status: 0 when every listed dataset is usable or merely missing, 1 on a checksum mismatch or
a failed download, 2 when a dataset named on the command line is missing.
"""

from __future__ import annotations

import argparse
import sys

from reprolib.paths import DataRootNotSet

from . import DATASETS, load_dataset, resolve_root
from .catalog import CATALOG, DOWNLOAD_SUBFOLDER, check_availability

def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"datasets to check (default: all of {', '.join(CATALOG)})")
    parser.add_argument("--root", default=None, help="data root (default: $REPROLIB_DATA)")
    parser.add_argument(
        "--download", action="store_true",
        help="download missing datasets through torchvision / Tonic into the reprolib cache (network!)",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="also print source, license and how to get each dataset")


def main(args: argparse.Namespace) -> int:
    names = list(args.names) or list(CATALOG)
    unknown = [n for n in names if n not in CATALOG]
    if unknown:
        print(f"reprolib data: error: unknown dataset(s) {', '.join(unknown)}; expected one of {', '.join(CATALOG)}.",
              file=sys.stderr)
        return 2
    try:
        root = resolve_root(args.root)
    except DataRootNotSet as error:
        print(f"reprolib data: error: {error}", file=sys.stderr)
        return 2
    print(f"data root: {root if root is not None else '(not set: use --root or REPROLIB_DATA)'}")
    status = 0
    for name in names:
        result = check_availability(name, root)
        if result.status == "missing" and args.download and name in DOWNLOAD_SUBFOLDER and name in DATASETS:
            print(f"{name}: downloading (explicit --download) ...")
            try:
                for split in ("train", "test"):
                    load_dataset(name, split, root=args.root, download=True, val_fraction=0)
            except Exception as error:  # report and go on with the other datasets
                print(f"{name}: download failed: {error}")
                status = max(status, 1)
            result = check_availability(name, root)
        info = CATALOG[name]
        where = f" in {result.location}" if result.location else ""
        print(f"{name:14s} {result.status:8s}{where}  ({result.checked} files verified; {info.checksum_note})")
        if result.status in ("found", "subset"):
            print(f"{'':14s} {result.detail}")
            if info.caveat:
                print(f"{'':14s} caveat: {info.caveat}")
            if args.verbose:
                print(f"{'':14s} source: {info.source}\n{'':14s} license: {info.license}")
        else:
            for line in result.detail.splitlines():
                print(f"{'':14s} {line}")
        if result.status == "corrupt":
            status = max(status, 1)
        elif result.status == "missing" and args.names:
            status = max(status, 2)
    return status
