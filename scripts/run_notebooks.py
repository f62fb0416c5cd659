"""Execute every notebook under a folder with nbclient; fail on the first error.

Notebooks run from a temporary copy so the committed files keep no outputs, each with a time
limit, and with NOVACRON_NOTEBOOK_SMALL=1 so they pick their small default runs.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def main(folder: str) -> int:
    notebooks = sorted(Path(folder).glob("*.ipynb"))
    if not notebooks:
        print(f"no notebooks in {folder}")
        return 0
    import nbformat
    from nbclient import NotebookClient

    os.environ["NOVACRON_NOTEBOOK_SMALL"] = "1"
    failed = 0
    for path in notebooks:
        started = time.perf_counter()
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, timeout=240, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}})
        try:
            client.execute()
        except Exception as exc:  # noqa: BLE001 - report every notebook's failure, then fail
            failed += 1
            print(f"FAILED {path}: {type(exc).__name__}: {str(exc)[-2000:]}")
            continue
        print(f"ok     {path} ({time.perf_counter() - started:.1f} s)")
    print(f"notebooks: {len(notebooks) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "notebooks"))
