"""web/vendor.py: the vendored browser libraries are the pinned ones, and a tarball or file that differs
from its pin is refused, never written."""

from __future__ import annotations

import io
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest

from web import vendor


def _tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _package(files: dict[str, bytes], tarball: bytes) -> vendor.Package:
    return vendor.Package(name="example", version="1.0.0", integrity=vendor.integrity_of(tarball),
                          files={name: vendor.sha256(data) for name, data in files.items()}, why="a test")


@pytest.mark.parametrize("package", vendor.PINNED, ids=lambda p: p.name)
def test_the_committed_copies_are_the_pinned_files(package: vendor.Package) -> None:
    """What is committed under web/static/vendor/ is byte for byte what the pins name (checked offline)."""
    assert vendor.problems(package) == []
    assert package.integrity.startswith("sha512-")
    base = package.name.rsplit("/", 1)[-1]  # a scoped package's tarball is named without its scope
    assert package.tarball_url == f"https://registry.npmjs.org/{package.name}/-/{base}-{package.version}.tgz"


def test_axe_core_is_pinned_to_a_4x_release_with_its_licences() -> None:
    """axe-core is pinned to a 4.x release, and its pinned files include the minified script and its LICENSE."""
    axe = next(p for p in vendor.PINNED if p.name == "axe-core")
    assert axe.version.startswith("4.")
    assert {"axe.min.js", "LICENSE"} <= set(axe.files)


def test_a_tarball_that_is_not_the_pinned_one_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A downloaded tarball that differs from the pinned one is refused with an integrity error."""
    files = {"lib.js": b"console.log(1)"}
    package = _package(files, _tarball(files))
    tampered = _tarball({"lib.js": b"console.log(2)"})

    class Response(io.BytesIO):
        def __enter__(self) -> Response:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

    monkeypatch.setattr(vendor.urllib.request, "urlopen", lambda url, timeout: Response(tampered))
    with pytest.raises(vendor.VendorError, match="integrity"):
        vendor.download(package)


def test_only_pinned_files_are_written_and_each_is_checked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Installing writes only the pinned files, never another file of the tarball nor one whose path climbs
    out of the vendor directory; a file whose SHA-256 differs from its pin is refused and not written, and a
    pinned file missing from the tarball is refused by name."""
    files = {"lib.js": b"console.log(1)", "LICENSE": b"MIT"}
    tarball = _tarball({**files, "../../escape.js": b"x", "other.js": b"y"})
    package = _package(files, tarball)
    monkeypatch.setattr(vendor, "VENDOR_DIR", tmp_path)
    written = vendor.install(package, tarball)
    assert sorted(p.name for p in written) == ["LICENSE", "lib.js"]
    assert sorted(p.name for p in (tmp_path / "example").iterdir()) == ["LICENSE", "lib.js"]
    assert not (tmp_path.parent / "escape.js").exists()

    wrong = replace(package, files={**package.files, "lib.js": "0" * 64})
    (tmp_path / "example" / "lib.js").unlink()
    with pytest.raises(vendor.VendorError, match="SHA-256"):
        vendor.install(wrong, tarball)
    assert not (tmp_path / "example" / "lib.js").exists()
    with pytest.raises(vendor.VendorError, match="has no missing.js"):
        vendor.members(replace(package, files={"missing.js": "0" * 64}), tarball)
