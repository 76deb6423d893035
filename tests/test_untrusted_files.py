"""The shared readers of untrusted files: ``midilm.files`` (regular files only, never blocking),
``midilm.npyfile`` (a strict .npy reader, checked against ``np.load``) and ``midilm.validate``."""

from __future__ import annotations

import io
import os
import socket

import numpy as np
import pytest

from midilm.errors import StoreError
from midilm.files import NotRegularFileError, describe, open_regular
from midilm.npyfile import read_npy
from midilm.validate import COUNT, SHA256, check_object, list_of, one_of, optional

posix_only = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs (POSIX)")


@posix_only
def test_open_regular_refuses_a_fifo_without_waiting_for_a_writer(tmp_path):
    os.mkfifo(tmp_path / "pipe.mid")
    with pytest.raises(NotRegularFileError, match=r"not a regular file \(a named pipe \(FIFO\)\)"):
        open_regular(tmp_path / "pipe.mid")
    assert describe(tmp_path / "pipe.mid") == "a named pipe (FIFO)"


@posix_only
def test_open_regular_refuses_devices_sockets_and_folders_but_follows_links_to_files(tmp_path):
    os.symlink("/dev/zero", tmp_path / "zero.mid")
    with pytest.raises(NotRegularFileError, match="a character device"):
        open_regular(tmp_path / "zero.mid")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "s"))
        with pytest.raises(NotRegularFileError, match="a socket"):
            open_regular(tmp_path / "s")
    with pytest.raises(NotRegularFileError, match="a folder"):
        open_regular(tmp_path)
    (tmp_path / "real.mid").write_bytes(b"MThd")
    os.symlink(tmp_path / "real.mid", tmp_path / "link.mid")
    with open_regular(tmp_path / "link.mid") as handle:
        assert handle.read() == b"MThd"
    assert issubclass(NotRegularFileError, OSError)  # callers' `except OSError` already handle it
    assert describe(tmp_path / "missing") == "missing"


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize("rows", [0, 1, 7, 1000])
@pytest.mark.parametrize("dtype", ["<i8", "<u2"])
def test_read_npy_agrees_with_np_load_on_every_valid_file(rows, dtype):
    array = np.arange(rows * 3, dtype=dtype).reshape(rows, 3)
    data = npy_bytes(array)
    got = read_npy(data, "x.npy", StoreError, dtype=np.dtype(dtype), columns=3)
    np.testing.assert_array_equal(got, np.load(io.BytesIO(data)))
    assert got.dtype == np.dtype(dtype) and not got.flags.writeable


def test_read_npy_reads_version_2_headers():
    array = np.ones((2, 3), dtype="<i8")
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, version=(2, 0))
    np.testing.assert_array_equal(read_npy(buffer.getvalue(), "x.npy", StoreError, dtype=np.dtype("<i8"), columns=3), array)


def with_header(text: str, data: bytes = b"") -> bytes:
    body = text.encode("latin1")
    body += b" " * (-(len(body) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body + data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a .npy file"),
        (b"\x93NUMPY\x01\x00\xff", "cut inside its header"),
        (b"\x93NUMPY\x09\x00\x10\x00{}", "format version 9"),
        (with_header("{'descr': '<i8', 'fortran_order': False, 'shape': (10**12, 3), }"), "unreadable .npy header"),
        (with_header("{'descr': '<i8', 'fortran_order': False, 'shape': (1000000000000, 3), }"), "claims 1000000000000 rows"),
        (with_header("{'descr': '|O', 'fortran_order': False, 'shape': (1, 3), }"), "Python objects"),
        (with_header("{'descr': '<i8', 'fortran_order': True, 'shape': (1, 3), }", bytes(24)), "field fortran_order"),
        (with_header("{'descr': '<i8', 'fortran_order': False, 'shape': (-1, 3), }"), "field shape"),
        (with_header("{'descr': '<i8', 'fortran_order': False, 'shape': (1, 4), }", bytes(32)), "expected 3 columns"),
        (
            with_header("{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }", bytes(24)),
            r"claims 2 rows \(48 bytes of data\), the file holds 24 bytes",
        ),
        (with_header("{'descr': '<i8', 'shape': (1, 3), }"), "header is not a dict of"),
        (with_header("__import__('os').system('true')"), "unreadable .npy header"),
        (with_header("(" * 300 + ")" * 300), "unreadable .npy header"),
    ],
)
def test_read_npy_refuses_damaged_headers_with_one_error_class(data, message):
    with pytest.raises(StoreError, match=message):
        read_npy(data, "index.npy", StoreError, dtype=np.dtype("<i8"), columns=3)


def test_check_object_names_the_place_and_the_field():
    fields = {"rows": COUNT, "digest": optional(SHA256), "split": one_of(("train", "val")), "sizes": list_of(COUNT)}
    check_object({"rows": 3, "digest": None, "split": "val", "sizes": [1, 2]}, fields, where="f.json", error=StoreError, required=("rows",))
    cases = [
        ({"rows": "abc"}, "f.json: field rows: expected a non-negative integer, got 'abc'"),
        ({"rows": True}, "field rows"),
        ({"rows": 1, "split": "dev"}, "field split: expected one of 'train', 'val'"),
        ({"rows": 1, "sizes": [1, -2]}, "field sizes"),
        ({"rows": 1, "digest": "00"}, "field digest"),
        ({}, r"f.json: lacks field\(s\) rows"),
        ([1], "expected a JSON object, got list"),
    ]
    for value, message in cases:
        with pytest.raises(StoreError, match=message):
            check_object(value, fields, where="f.json", error=StoreError, required=("rows",))
