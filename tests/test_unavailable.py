from __future__ import annotations

import pytest

from backends.manager.netns import RigUnavailable
from tests.unavailable import require_binary, rig_needed, unavailable


def test_a_missing_need_fails_under_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true and redis-server is not installed"):
        unavailable("redis-server is not installed")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="redis-server is not installed"):
        unavailable("redis-server is not installed")


def test_require_binary_returns_the_first_name_on_path_or_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    assert require_binary("no-such-binary-novacron", "sh", missing="no shell").endswith("/sh")
    with pytest.raises(pytest.fail.Exception, match="no-such-binary-novacron is not installed"):
        require_binary("no-such-binary-novacron", missing="no-such-binary-novacron is not installed")


def test_a_rig_that_cannot_be_built_makes_the_test_unavailable_with_its_reason(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="the namespace rig cannot be built here: needs root"), \
            rig_needed("the namespace rig"):
        raise RigUnavailable("needs root")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true and the namespace rig"), rig_needed("the namespace rig"):
        raise RigUnavailable("needs root")
    with rig_needed("the namespace rig"):
        built = True  # a rig that builds runs the block untouched
    assert built
