"""Every notebook in notebooks/ runs top to bottom without an error.

The notebooks execute in a Jupyter kernel running *this* interpreter (a
kernelspec written to a temporary folder points at ``sys.executable``, so a
``python3`` kernel installed elsewhere on the machine cannot be picked up),
with a temporary working directory so files they save do not land in the
repository.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbclient
import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager  # nbclient's own dependency
from jupyter_client.manager import AsyncKernelManager

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
KERNEL_NAME = "fxplain-test-python"
CELL_TIMEOUT = 600  # seconds per cell


def test_notebooks_exist():
    assert NOTEBOOKS, "no notebooks found in notebooks/"


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory) -> Path:
    """A folder holding one kernelspec that runs ipykernel on sys.executable."""
    root = tmp_path_factory.mktemp("kernels")
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python {sys.version_info.major}.{sys.version_info.minor} (fxplain tests)",
        "language": "python",
    }
    (root / KERNEL_NAME).mkdir()
    (root / KERNEL_NAME / "kernel.json").write_text(json.dumps(spec))
    return root


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_without_errors(path, kernel_dir, tmp_path, monkeypatch, default_decoder):
    # default_decoder: trained (or loaded) here first, so 02_reconstruction loads it from the cache
    monkeypatch.chdir(tmp_path)
    # keep the kernel from writing IPython history/config into the user's home
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / ".ipython"))
    nb = nbformat.read(path, as_version=4)
    # one extra cell, on the executed copy only: which environment ran the notebook
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.prefix)"))
    km = AsyncKernelManager(kernel_name=KERNEL_NAME,
                            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernel_dir)]))
    client = nbclient.NotebookClient(nb, km=km, timeout=CELL_TIMEOUT,
                                     resources={"metadata": {"path": str(tmp_path)}})
    # raises CellExecutionError (with the traceback) on the first failing cell; cleanup_kc: shut the
    # kernel down and close its channels afterwards (nbclient keeps a kernel it was handed alive)
    client.execute(cleanup_kc=True)

    errors = [out for cell in nb.cells if cell.cell_type == "code"
              for out in cell.get("outputs", []) if out.output_type == "error"]
    assert not errors, errors
    prefix = "".join(out.get("text", "") for out in nb.cells[-1].outputs).strip()
    assert prefix == sys.prefix, f"the notebook ran in {prefix!r}, not in this environment ({sys.prefix!r})"
