"""``load_tokens``: the one reader of ``.npy`` token files refuses what
``numpy.load`` would trust (issue 15, row 7's token files)."""

from __future__ import annotations

import numpy as np
import pytest

from midilm.errors import TokenError
from midilm.tokenizer import load_tokens


def header(shape: tuple, descr: str = "<u2") -> bytes:
    """An .npy 1.0 header, as numpy writes it, for any claimed shape."""
    text = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    text += b" " * (63 - (len(text) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text


def test_token_arrays_load_as_saved(tmp_path):
    tokens = np.arange(24, dtype=np.uint16).reshape(3, 8)
    np.save(tmp_path / "a.npy", tokens)
    loaded = load_tokens(tmp_path / "a.npy")
    assert loaded.dtype == np.uint16
    np.testing.assert_array_equal(loaded, tokens)
    np.save(tmp_path / "f.npy", np.asfortranarray(tokens.astype(np.int64)))
    np.testing.assert_array_equal(load_tokens(tmp_path / "f.npy"), tokens)
    np.save(tmp_path / "empty.npy", np.zeros((0, 8), np.uint16))
    assert load_tokens(tmp_path / "empty.npy").shape == (0, 8)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "the file is empty"),
        (b"PK\x03\x04 not numpy", "not a .npy file"),
        (header((10**12, 8)) + bytes(64), r"claims 1000000000000 rows \(16000000000000 bytes of data\), the file holds 64 bytes"),
        (header((4, 8)) + bytes(63), "the file holds 63 bytes"),
        (header((2, 8), "<f4") + bytes(64), "expected an integer dtype, got '<f4'"),
        (header((2, 8), "|O") + bytes(16), "Python objects"),
        (header((3, 7)) + bytes(42), "expected 8 columns, got 7"),
        (header((8,)) + bytes(16), r"field shape: expected \(rows, 8\), got \(8,\)"),
        (b"\x93NUMPY\x09\x00" + bytes(20), "version 9 is not one of 1, 2, 3"),
        (b"\x93NUMPY\x01\x00\x10\x00{'descr': bad}\n" + bytes(16), "unreadable .npy header"),
    ],
)
def test_damaged_token_files_are_refused_with_the_reason(content, reason, tmp_path):
    path = tmp_path / "tokens.npy"
    path.write_bytes(content)
    with pytest.raises(TokenError, match=reason) as error:
        load_tokens(path)
    assert str(path) in str(error.value)


def test_pickled_arrays_are_never_loaded(tmp_path):
    path = tmp_path / "pickle.npy"
    np.save(path, np.array([[object()] * 8], dtype=object), allow_pickle=True)
    with pytest.raises(TokenError, match="never loaded"):
        load_tokens(path)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(TokenError, match="missing.npy: cannot read"):
        load_tokens(tmp_path / "missing.npy")
