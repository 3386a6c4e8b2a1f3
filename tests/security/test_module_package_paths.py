"""Agent package tars are untrusted input: members that escape the package (`../`, absolute
paths), links and devices are refused, and a compressed package cannot expand past the limit."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from aionix.modules import oci


def _tar(members: list[tarfile.TarInfo], data: bytes = b"x") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info in members:
            if info.isfile():
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return buf.getvalue()


@pytest.mark.parametrize("name", ["../escape", "/etc/passwd", "a/../../b", "..", "blobs/../../x"])
def test_escaping_member_names_are_refused(name):
    with pytest.raises(oci.PackageError, match="unsafe path"):
        oci.read_layout(_tar([tarfile.TarInfo(name)]), 1 << 20)


def test_links_and_devices_are_refused():
    link = tarfile.TarInfo("index.json")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    with pytest.raises(oci.PackageError, match="not a regular file"):
        oci.read_layout(_tar([link]), 1 << 20)
    hard = tarfile.TarInfo("oci-layout")
    hard.type = tarfile.LNKTYPE
    hard.linkname = "x"
    with pytest.raises(oci.PackageError, match="not a regular file"):
        oci.read_layout(_tar([hard]), 1 << 20)
    dev = tarfile.TarInfo("dev")
    dev.type = tarfile.CHRTYPE
    with pytest.raises(oci.PackageError, match="not a regular file"):
        oci.read_layout(_tar([dev]), 1 << 20)


def test_compressed_package_cannot_expand_past_the_limit():
    bomb = gzip.compress(_tar([tarfile.TarInfo("blobs/sha256/" + "0" * 64)], b"\0" * (8 << 20)))
    assert len(bomb) < 64 << 10
    with pytest.raises(oci.PackageError, match="larger than"):
        oci.read_layout(bomb, 1 << 20)


def test_code_layer_paths_are_checked_too():
    layer = gzip.compress(_tar([tarfile.TarInfo("../../outside.py")]))
    with pytest.raises(oci.PackageError, match="unsafe path"):
        oci._read_tar(layer, 1 << 20, "code")
