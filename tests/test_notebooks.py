"""The notebook runner fails on any error, runs the kernel on this interpreter, and the committed
notebooks carry no outputs (executing them all is ``scripts/run_notebooks.py notebooks``, which
``scripts/test`` runs)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def _runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_notebooks", REPO / "scripts" / "run_notebooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _notebook(path: Path, *sources: str) -> Path:
    nbformat = pytest.importorskip("nbformat")
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(cells=[new_code_cell(source) for source in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_the_three_notebooks_exist() -> None:
    assert {p.name for p in NOTEBOOKS} >= {"migration_downtime.ipynb", "capacity_planning.ipynb",
                                           "cache_hit_rates.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebooks_have_no_outputs(path: Path) -> None:
    nb = json.loads(path.read_text())
    dirty = [i for i, cell in enumerate(nb["cells"])
             if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} keep outputs; strip them before committing"


@pytest.mark.slow
def test_runner_passes_on_this_interpreter_with_novacron(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    _notebook(tmp_path / "ok.ipynb",
              "import os, sys\nimport novacron\n"
              f"assert sys.prefix == {sys.prefix!r}, sys.prefix\n"
              "assert os.environ['NOVACRON_NOTEBOOK_SMALL'] == '1'")
    assert _runner().main(str(tmp_path)) == 0, capsys.readouterr().out


@pytest.mark.slow
def test_runner_fails_when_a_cell_raises(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    _notebook(tmp_path / "a_fine.ipynb", "x = 1")
    _notebook(tmp_path / "b_broken.ipynb", "x = 1", "raise RuntimeError('the broken cell')", "y = 2")
    assert _runner().main(str(tmp_path)) == 1
    out = capsys.readouterr().out
    assert "ok     " in out and "a_fine.ipynb" in out
    assert "FAILED" in out and "b_broken.ipynb" in out and "the broken cell" in out
    assert "1 passed, 1 failed" in out
