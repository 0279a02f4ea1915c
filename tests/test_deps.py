"""Missing optional dependencies: one helper words every message."""

from __future__ import annotations

import sys

import pytest

from acme_fast import _deps, synthetic


def test_need_imports_an_installed_module():
    assert _deps.need("json", "x", "io") is sys.modules["json"]


def test_need_names_purpose_package_and_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError) as e:
        synthetic._need_h5py()
    msg = str(e.value)
    assert msg.startswith("saving/loading the synthetic dataset needs 'h5py'"), msg
    assert 'pip install "acme_fast[io]"' in msg, msg


def test_need_names_the_top_level_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask", None)
    monkeypatch.setitem(sys.modules, "dask.array", None)  # in case another test imported it
    with pytest.raises(ImportError, match=r"acme_fast\.dask needs 'dask'.*acme_fast\[dask\]"):
        _deps.need("dask.array", "acme_fast.dask", "dask")
