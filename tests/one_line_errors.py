"""The house rule for bad input, checked in one place: the error is a single line."""

from __future__ import annotations

from collections.abc import Callable

import pytest


def one_line_error(error: type[Exception], call: Callable[[], object]) -> str:
    """The message of the ``error`` that ``call`` raises, after checking it is one line."""
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    assert "\n" not in message, message
    return message
