"""Machine-readable verdicts for CI: JUnit XML and JSON, both from the one ``RunVerdict``.

JUnit: one ``<testsuite>`` per run, one ``<testcase>`` per target. A required target that failed
is a ``<failure>``, one that was not measured is a ``<failure type="not measured">`` (it fails the
check unless unmeasured targets are allowed, then it is ``<skipped>``), and a reference figure is
always ``<skipped>``: CI systems (GitLab, Jenkins, GitHub test reporters) show it without
counting it. Settings go in ``<properties>``.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from novacron.slo import RunVerdict, TargetResult, Verdict, format_measured


def _case(suite: ET.Element, result: TargetResult, classname: str, *, allow_unmeasured: bool) -> str:
    """Add one testcase; return its outcome (passed, failure, skipped)."""
    t = result.target
    case = ET.SubElement(suite, "testcase", classname=classname, name=t.name, time="0")
    measured = format_measured(result.measured, t.unit)
    text = f"{t.metric}: measured {measured}, needs {t.describe_threshold()}"
    if not result.counts:
        ET.SubElement(case, "skipped", message=f"reference figure ({result.verdict.value}): {text}")
        return "skipped"
    if result.verdict is Verdict.FAIL:
        ET.SubElement(case, "failure", message=text, type="target missed").text = text
        return "failure"
    if result.verdict is Verdict.NOT_MEASURED:
        message = f"{t.metric}: not measured (the run produced no such metric), needs {t.describe_threshold()}"
        if allow_unmeasured:
            ET.SubElement(case, "skipped", message=message)
            return "skipped"
        ET.SubElement(case, "failure", message=message, type="not measured").text = message
        return "failure"
    ET.SubElement(case, "system-out").text = text
    return "passed"


def junit_xml(verdict: RunVerdict, *, suite_name: str, allow_unmeasured: bool = False) -> str:
    root = ET.Element("testsuites", name="novacron check")
    suite = ET.SubElement(root, "testsuite", name=suite_name)
    properties = ET.SubElement(suite, "properties")
    for setting, value in verdict.settings:
        ET.SubElement(properties, "property", name=setting.metric, value=format_measured(value, setting.unit))
    outcomes = [_case(suite, r, "novacron.targets.required", allow_unmeasured=allow_unmeasured)
                for r in verdict.required]
    outcomes += [_case(suite, r, "novacron.targets.reference", allow_unmeasured=allow_unmeasured)
                 for r in verdict.references]
    counts = {"tests": len(outcomes), "failures": outcomes.count("failure"), "errors": 0,
              "skipped": outcomes.count("skipped")}
    for element in (root, suite):
        for key, value in counts.items():
            if element is root and key == "skipped":
                continue
            element.set(key, str(value))
    suite.set("time", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(path: Path, verdict: RunVerdict, *, suite_name: str, allow_unmeasured: bool = False) -> None:
    path.write_text(junit_xml(verdict, suite_name=suite_name, allow_unmeasured=allow_unmeasured))


def check_json(verdict: RunVerdict, *, run_dir: Path, scenario: str, seed: int,
               metrics: dict[str, Any], allow_unmeasured: bool = False) -> str:
    document = {"scenario": scenario, "seed": seed, "run_dir": str(run_dir),
                "passed": verdict.passed(allow_unmeasured=allow_unmeasured),
                "allow_unmeasured": allow_unmeasured,
                "blocking": [r.target.name for r in verdict.blocking(allow_unmeasured=allow_unmeasured)],
                "admission": {k.removeprefix("cluster."): metrics.get(k) for k in
                              ("cluster.vms_requested", "cluster.vms_placed", "cluster.vms_rejected",
                               "cluster.vms_unanswered")},
                **verdict.as_dict()}
    return json.dumps(document, indent=2)
