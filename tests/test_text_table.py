"""The summaries' plain-text tables (edge services, datacenters, replication modes) share one layout."""

from __future__ import annotations

from novacron.text_table import text_table


def test_labels_left_cells_right_and_a_rule_as_wide_as_the_header() -> None:
    table = text_table("mode", 6, ["p50 ms", "RPO s"], 8, [("sync", ["1.5", "-"]), ("async", ["12.0", "3.2"])])
    assert table.splitlines() == [
        "mode      p50 ms     RPO s",
        "--------------------------",
        "sync         1.5         -",
        "async       12.0       3.2",
    ]


def test_a_table_without_rows_is_its_header() -> None:
    assert text_table("dc", 2, ["VMs"], 4, []) == "dc   VMs\n--------"
