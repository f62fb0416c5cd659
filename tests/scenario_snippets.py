"""Scenario TOML fragments the tests share."""

CACHE_AND_RAFT_OFF = "[cache]\nenabled = false\n[raft]\nsimulate_s = 0.0\n"
"""Sections that switch off the cache and the stand-alone Raft managers, so a test run simulates
placement and whatever else the test's text asks for (a migration batch...)."""

ONLY_PLACEMENT = CACHE_AND_RAFT_OFF + "[migration]\nmigrations = 0\n"
"""Sections that switch off the cache, the migration batch and the stand-alone Raft managers, so a
test run simulates placement and utilisation only (fast, and only the capacity targets apply)."""
