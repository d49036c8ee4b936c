import re
from typing import get_args

from brickwork.inspect import findings
from brickwork.inspect.doctor import NEEDS_A_FULL_PASS
from brickwork.inspect.findings import Finding, FindingCode, Report, Severity


def test_every_code_in_the_table_is_a_finding_code() -> None:
    doc = findings.__doc__ or ""
    table = re.findall(r"^([a-z]+(?:-[a-z]+)+)\s", doc, re.MULTILINE)
    assert table == list(get_args(FindingCode))
    assert set(NEEDS_A_FULL_PASS) <= set(table)
    assert get_args(Severity) == ("error", "warning", "note")


def test_a_report_with_warnings_only_is_ok() -> None:
    report = Report("Net", [Finding("side-effect", "warning", "", "forward prints")])
    assert report.ok
    assert report.codes() == ["side-effect"]
    assert report.to_dict()["ok"] is True
    report.findings.append(Finding("state-leak", "error", "cache", "grows", "keep it local"))
    assert not report.ok
    text = str(report)
    assert f"error   {'state-leak':<23} cache: grows" in text  # as wide as the longest code
    assert "hint: keep it local" in text
    assert text.rstrip().endswith("Net: 1 error(s), 1 warning(s)")
