"""Settings files (scenarios, calibration profiles) read as any editor saves them."""

from __future__ import annotations

from pathlib import Path

from novacron.config import ConfigError


def read_utf8_text(path: Path, *, what: str, error: type[ConfigError] = ConfigError) -> str:
    """A settings file as any editor saves it: UTF-8, a byte-order mark dropped (it is not TOML).
    Not UTF-8: ``error`` naming the file and ``what`` it should be; ``OSError`` is the caller's."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not {what}: the file is not UTF-8 text (byte {exc.start}); "
                    "allowed: a TOML file") from None
