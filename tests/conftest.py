"""Shared fixtures: fake installed distributions (``megatron_plugins`` comes from
megatron-core's own pytest plugin); and the rule for optional dependencies.

Every package's tests run in its own environment (``tox -e core``, ``sklearn``, ``keras``,
``sql``) as well as all together. A test that needs an optional library says so with
``pytest.importorskip(MODULE, reason="needs MODULE ...")`` (in a conftest.py for a whole
folder), so it is skipped, with that reason, where the library is absent. A skip for a module
that *is* importable means a test did not run where it should: the run fails.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

_MISSING_MODULE = re.compile(r"(?:^|Skipped: )needs ([A-Za-z_][\w.]*)|could not import '([\w.]+)'")
_wrong_skips: list[str] = []


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _check_skip(report: pytest.CollectReport | pytest.TestReport) -> None:
    if not report.skipped or not isinstance(report.longrepr, tuple):
        return
    reason = str(report.longrepr[2])
    match = _MISSING_MODULE.search(reason)
    if match is None:
        return
    module = match.group(1) or match.group(2)
    if _importable(module):
        _wrong_skips.append(
            f"{report.nodeid or report.longrepr[0]}: skipped ({reason}) but {module} is installed"
        )


def pytest_collectreport(report: pytest.CollectReport) -> None:
    _check_skip(report)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _check_skip(report)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _wrong_skips:
        terminalreporter.section("skipped for a missing module that is installed", red=True)
        for line in _wrong_skips:
            terminalreporter.line(line, red=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _wrong_skips and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def install_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, megatron_plugins: Callable[..., None]
) -> Callable[..., Path]:
    """Install a fake distribution: a module and a dist-info with a ``megatron`` entry point,
    on ``sys.path`` for the test only, as ``pip install`` would lay them out."""
    site = tmp_path / "site-packages"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))

    def install(dist: str, module: str, source: str, entry_point: str | None = None) -> Path:
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
        name = entry_point or module
        (info / "entry_points.txt").write_text(f"[megatron]\n{name} = {module}\n")
        monkeypatch.delitem(sys.modules, module, raising=False)
        return site

    return install
