"""Scenario TOML fragments the tests share."""

ONLY_PLACEMENT = "[cache]\nenabled = false\n[migration]\nmigrations = 0\n[raft]\nsimulate_s = 0.0\n"
"""Sections that switch off the cache, the migration batch and the stand-alone Raft managers, so a
test run simulates placement and utilisation only (fast, and only the capacity targets apply)."""
