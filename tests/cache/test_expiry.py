"""The expiry schedule the memory and disk tiers share (novacron/cache/expiry.py)."""

from __future__ import annotations

from novacron.cache.expiry import SLACK, ExpirySchedule


def schedule_over(entries: dict[str, float | None]) -> ExpirySchedule:
    return ExpirySchedule(entries.get, lambda: entries.items())


def test_due_skips_rewritten_and_deleted_keys_and_reports_each_key_once() -> None:
    entries: dict[str, float | None] = {}
    schedule = schedule_over(entries)
    for key, expires_at_s in (("a", 5.0), ("b", 5.0), ("c", 9.0)):
        entries[key] = expires_at_s
        schedule.add(key, expires_at_s)
    entries["a"] = 20.0  # rewritten with a later expiry
    schedule.add("a", 20.0)
    del entries["c"]
    entries["b"] = 5.0  # rewritten with the same expiry: two identical records (found by the hypothesis model)
    schedule.add("b", 5.0)
    assert schedule.due(10.0) == ["b"]
    assert schedule.due(30.0) == ["a"]


def test_stale_records_are_compacted_away() -> None:
    entries: dict[str, float | None] = {"k": None}
    schedule = schedule_over(entries)
    for i in range(SLACK + 10):
        entries["k"] = float(i)
        schedule.add("k", float(i))
    assert len(schedule) <= SLACK
