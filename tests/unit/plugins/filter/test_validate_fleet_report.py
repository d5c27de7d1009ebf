"""dlnode.gpu.validate_fleet_report: fleet reports from fixture node reports, the HTML read back through headless chromium."""
from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.dlnode.gpu.plugins.filter.validate_fleet_report import validate_fleet_report

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "validate"


@pytest.fixture
def reports():
    # gpu01 passes, gpu02 fails (a volatile uncorrected ECC error, required; bf16 at 60 % of its threshold),
    # gpu03 passes with a warning (software power cap); given in name order.
    return [json.loads((FIXTURES / f"{name}.json").read_text()) for name in ("gpu01", "gpu02", "gpu03")]


class _Table(HTMLParser):
    """The rows of table#fleet as lists of cell texts (the DOM as the browser built it)."""

    def __init__(self):
        super().__init__()
        self.rows, self._in_table, self._cell = [], False, None

    def handle_starttag(self, tag, attrs):
        if tag == "table" and ("id", "fleet") in attrs:
            self._in_table = True
        elif self._in_table and tag == "tr":
            self.rows.append([])
        elif self._in_table and tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_table = False
        elif self._in_table and tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def test_markdown_puts_the_failed_node_first(reports):
    text = validate_fleet_report(reports)
    lines = [line for line in text.splitlines() if line.startswith("| gpu")]
    assert [line.split("|")[1].strip() for line in lines] == ["gpu02", "gpu03", "gpu01"]
    assert "| FAIL |" in lines[0]
    assert "**required** gpu0.ecc: {\"enabled\": true, \"volatile_uncorrected\": 3} (threshold" in lines[0]
    assert "gpu0.bf16_tflops: 402.4 (threshold 670.6)" in lines[0]
    assert "1 of 3 nodes failed." in text


def test_html_read_back_in_headless_chromium(reports, tmp_path):
    browser = shutil.which("chromium")
    if browser is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    page = tmp_path / "fleet.html"
    page.write_text(validate_fleet_report(reports, "html"), encoding="utf-8")
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True).stdout
    table = _Table()
    table.feed(dom)
    header, rows = table.rows[0], table.rows[1:]
    assert header == ["node", "verdict", "GPUs", "pass", "warn", "fail", "skip", "failed checks"]
    assert [row[0] for row in rows] == ["gpu02", "gpu03", "gpu01"]
    failed = rows[0]
    assert failed[1] == "FAIL"
    assert failed[2] == "1 x NVIDIA H100 80GB HBM3"
    assert failed[5] == "2"
    assert 'gpu0.ecc: value {"enabled": true, "volatile_uncorrected": 3}, threshold' in failed[7]
    assert "gpu0.bf16_tflops: value 402.4, threshold 670.6" in failed[7]
    assert rows[2][1] == "PASS" and rows[2][7] == "-"
    # Self-contained: nothing for the browser to fetch.
    assert "src=" not in dom and "href=" not in dom


def test_html_escapes_what_nodes_report(reports):
    reports[1]["node"] = "<script>x</script>"
    text = validate_fleet_report(reports, "html")
    assert "<script>" not in text and "&lt;script&gt;x&lt;/script&gt;" in text


@pytest.mark.parametrize("args, message", [
    (([],), None),
    (("nope",), "validate_fleet_report: expected a list of node reports, got str"),
    (([{"node": "x"}],), "validate_fleet_report: each item must be a gpu_validate report (with node and checks)"),
    (([], "pdf"), "validate_fleet_report: format must be markdown or html, got 'pdf'"),
])
def test_bad_input(args, message):
    if message is None:
        assert "0 of 0 nodes failed." in validate_fleet_report(*args)
        return
    with pytest.raises(AnsibleFilterError) as err:
        validate_fleet_report(*args)
    assert str(err.value).startswith(message)
