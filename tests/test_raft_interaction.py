"""Golden interaction scripts for the Raft core: every ``tests/testdata/raft/*.txt`` must print
exactly what it says.

Each script drives ``RaftNode`` objects step by step (see ``tests/raft_interaction.py`` for the
commands) and records, after each command, the messages sent, the state changes and the entries
committed. A change in behaviour -- intended or not -- shows up as a diff here.

When a change is intended, rewrite the expected outputs and review the diff before committing::

    NOVACRON_REWRITE_GOLDEN=1 .venv/bin/python -m pytest tests/test_raft_interaction.py -q
    git diff tests/testdata/raft/
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

from tests.raft_interaction import parse_script, render_script, run_script

SCRIPTS_DIR = Path(__file__).parent / "testdata" / "raft"
SCRIPTS = sorted(SCRIPTS_DIR.glob("*.txt"))
REWRITE = os.environ.get("NOVACRON_REWRITE_GOLDEN") == "1"


def test_there_are_golden_scripts_for_every_topic() -> None:
    assert len(SCRIPTS) >= 12
    for script in SCRIPTS:
        first = script.read_text().splitlines()[0]
        assert first.startswith("#") and ("section" in first.lower() or "§" in first), \
            f"{script.name}: the first line must cite the paper or dissertation section it checks"


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_golden_script(script: Path) -> None:
    text = script.read_text()
    actual = run_script(text)
    if REWRITE:
        script.write_text(render_script(actual))
        return
    for want, got in zip(parse_script(text), actual, strict=True):
        if want.expected != got.expected:
            diff = "\n".join(difflib.unified_diff(want.expected, got.expected, "expected", "actual", lineterm=""))
            pytest.fail(f"{script.name}:{want.line_no}: {want.command}\n{diff}\n"
                        "(if intended: NOVACRON_REWRITE_GOLDEN=1, then review git diff)")


def test_a_script_is_deterministic() -> None:
    for script in SCRIPTS[:3]:
        text = script.read_text()
        assert render_script(run_script(text)) == render_script(run_script(text))


def test_the_node_reads_every_message_type_as_its_enum_member() -> None:
    """``novacron.raft.node.T`` holds the ``MessageType`` members for fast reads: a type missing
    there, or another object in its place, would make a node mishandle that message."""
    from novacron.raft.messages import MessageType
    from novacron.raft.node import T

    assert all(getattr(T, name, None) is member for name, member in MessageType.__members__.items())
