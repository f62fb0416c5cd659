"""Execute every notebook under a folder with nbclient; exit 1 if any cell of any notebook fails.

Notebooks execute in memory so the committed files keep no outputs, each cell with a time
limit, and with NOVACRON_NOTEBOOK_SMALL=1 so they pick their small default runs.

The kernel is ``python3``, but from a private kernelspec (first on ``JUPYTER_PATH``) whose command
is the interpreter running this script, so a user-level ``python3`` kernel pointing at another
Python can never be picked; the repository root is put on the kernel's ``PYTHONPATH`` so the
notebooks import this checkout's NovaCron even without an editable install.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

KERNEL_NAME = "python3"
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
REPO_ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def _kernel_environment() -> Iterator[None]:
    """A ``python3`` kernelspec running this interpreter, first on ``JUPYTER_PATH``; the repository
    on ``PYTHONPATH``; small runs. The environment is restored afterwards."""
    saved = {key: os.environ.get(key) for key in ("JUPYTER_PATH", "PYTHONPATH", "NOVACRON_NOTEBOOK_SMALL")}
    with tempfile.TemporaryDirectory(prefix="novacron-kernels-") as jupyter_dir:
        spec_dir = Path(jupyter_dir) / "kernels" / KERNEL_NAME
        spec_dir.mkdir(parents=True)
        spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": f"Python 3 ({sys.executable})", "language": "python"}
        (spec_dir / "kernel.json").write_text(json.dumps(spec))
        os.environ["JUPYTER_PATH"] = os.pathsep.join(p for p in (jupyter_dir, saved["JUPYTER_PATH"]) if p)
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), saved["PYTHONPATH"]) if p)
        os.environ["NOVACRON_NOTEBOOK_SMALL"] = "1"
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _execute(path: Path) -> bool:
    import nbformat
    from nbclient import NotebookClient

    started = time.perf_counter()
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=240, kernel_name=KERNEL_NAME,
                            resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
    except Exception as exc:  # report every notebook's failure, then fail
        message = ANSI_ESCAPE.sub("", str(exc))[-2000:]
        print(f"FAILED {path}: {type(exc).__name__}: {message}", flush=True)
        return False
    print(f"ok     {path} ({time.perf_counter() - started:.1f} s)", flush=True)
    return True


def main(folder: str) -> int:
    notebooks = sorted(Path(folder).glob("*.ipynb"))
    if not notebooks:
        print(f"no notebooks in {folder}")
        return 0
    failed = 0
    with _kernel_environment():
        for path in notebooks:
            if not _execute(path):
                failed += 1
    print(f"notebooks: {len(notebooks) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "notebooks"))
