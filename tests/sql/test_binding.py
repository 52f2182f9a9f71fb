"""What a write binds: no ``None`` for a missing fingerprint (the column's NULL stores it) and
no ``bytes`` for array cells, which ``sqlite3`` binds through its adapter lookup; the rows read
back are the same on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from megatron_sql import SQLStorage

OUTPUTS = {
    "x": np.array([1.5, np.nan, -0.0]),
    "v": np.arange(6, dtype=np.float32).reshape(3, 2),
    "s": np.array([["a", "bé"], ["", "c\x00d"], ["e", "f"]]),
    "z": np.array([1 + 2j, 0, -1j]),
}


def test_sqlite_writes_bind_no_value_through_the_adapter_lookup(tmp_path, monkeypatch):
    storage = SQLStorage(f"sqlite:///{tmp_path / 'out.db'}", "binding", "1")
    storage.write([0], {n: a[:1] for n, a in OUTPUTS.items()})  # the table and its description
    adapted: list[type] = []

    def counted(value: object) -> object:
        adapted.append(type(value))
        return value

    for kind in (type(None), bytes):
        monkeypatch.setitem(sqlite3.adapters, (kind, sqlite3.PrepareProtocol), counted)
    storage.write([0, 1, 2], OUTPUTS)
    storage.write([3, 4, 5], OUTPUTS, fingerprint="a" * 32)
    assert adapted == []
    back = storage.read()
    for name, array in OUTPUTS.items():
        np.testing.assert_array_equal(back[name], np.concatenate([array, array]), err_msg=name)


def test_rows_written_without_a_fingerprint_have_none(database_url):
    storage = SQLStorage(database_url, "cleared", None)
    storage.write([0, 1, 2], OUTPUTS, fingerprint="a" * 32)
    storage.write([1, 2], {n: a[:2] for n, a in OUTPUTS.items()})  # replaced rows: no fingerprint now
    storage.write([3], {n: a[:1] for n, a in OUTPUTS.items()})  # a new row: none either
    assert storage.lookup([0, 1, 2, 3], fingerprint="a" * 32)[0].tolist() == [0]
    back = SQLStorage(database_url, "cleared", None).read(rows=[1, 2, 3])
    np.testing.assert_array_equal(back["v"], OUTPUTS["v"][[0, 1, 0]])


@pytest.mark.parametrize("fingerprint", [None, "f" * 32])
def test_a_fingerprint_or_none_reads_back_alike_on_every_backend(database_url, fingerprint):
    storage = SQLStorage(database_url, "alike", None, copy_threshold=None)
    storage.write([7, 8, 9], OUTPUTS, fingerprint=fingerprint)
    back = SQLStorage(database_url, "alike", None).read()
    for name, array in OUTPUTS.items():
        np.testing.assert_array_equal(back[name], array, err_msg=name)
    found = storage.lookup([7, 8, 9], fingerprint="f" * 32)[0].tolist()
    assert found == ([0, 1, 2] if fingerprint else [])
