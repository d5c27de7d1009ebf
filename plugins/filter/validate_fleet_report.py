# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
from __future__ import annotations

DOCUMENTATION = r"""
name: validate_fleet_report
short_description: Render the validate gate's node reports as one fleet report, Markdown or a self-contained HTML page
version_added: 0.1.0
description:
  - Takes the JSON reports M(dlnode.gpu.gpu_validate) wrote on each node (fetched to the controller and parsed) and
    renders one table, one row per node, failed nodes first, then nodes with warnings, then the others, each by name.
  - Each row names the node, its verdict, its GPUs, the counts per status, and every failed check with its measured
    value and its threshold (failed required checks marked), so a bad node reads at a glance.
  - The HTML page has no external resource (styles inline, no script).
options:
  _input:
    description: The node reports (dicts as gpu_validate writes them).
    type: list
    elements: dict
    required: true
  format:
    description: V(markdown) or V(html).
    type: str
    default: markdown
    choices: [markdown, html]
  title:
    description: The report's heading.
    type: str
    default: GPU node acceptance
"""

EXAMPLES = r"""
- name: Write the fleet report
  ansible.builtin.copy:
    content: "{{ reports | dlnode.gpu.validate_fleet_report('html') }}"
    dest: reports/fleet.html
    mode: "0644"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
_value:
  description: The report as Markdown or HTML text.
  type: str
  sample: "| node | verdict | GPUs | ..."
"""

import html
import json

from ansible.errors import AnsibleFilterError

FORMATS = ("markdown", "html")
COLUMNS = ("node", "verdict", "GPUs", "pass", "warn", "fail", "skip", "failed checks")

STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; }
th, td { border: 1px solid #bbb; padding: 0.3em 0.6em; vertical-align: top; text-align: left; }
th { background: #eee; }
tr.fail td.verdict { background: #f4b6b6; font-weight: bold; }
tr.warn td.verdict { background: #f7e3a1; }
tr.pass td.verdict { background: #bfe5bf; }
td.checks ul { margin: 0; padding-left: 1.2em; }
.required { font-weight: bold; }
"""


def _text(value):
    if value is None:
        return "-"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _verdict(report):
    summary = report.get("summary") or {}
    if not report.get("passed", summary.get("passed", False)):
        return "fail"
    if summary.get("failed") or (summary.get("counts") or {}).get("warn"):
        return "warn"
    return "pass"


_ORDER = {"fail": 0, "warn": 1, "pass": 2}


def _gpus(report):
    gpus = report.get("gpus") or []
    if not gpus:
        return "none"
    names = sorted({gpu.get("name") or "unknown" for gpu in gpus})
    return f"{len(gpus)} x {', '.join(names)}"


def _rows(reports):
    if not isinstance(reports, (list, tuple)):
        raise AnsibleFilterError(f"validate_fleet_report: expected a list of node reports, got {type(reports).__name__}")
    rows = []
    for report in reports:
        if not isinstance(report, dict) or "node" not in report or "checks" not in report:
            raise AnsibleFilterError("validate_fleet_report: each item must be a gpu_validate report (with node and "
                                     f"checks), got {_text(report)[:80]}")
        summary = report.get("summary") or {}
        required = set(summary.get("failed_required") or [])
        failed = [dict(check, required=check["name"] in required)
                  for check in report["checks"] if check.get("status") == "fail"]
        counts = summary.get("counts") or {}
        rows.append({
            "node": report["node"],
            "verdict": _verdict(report),
            "gpus": _gpus(report),
            "counts": [counts.get(status, 0) for status in ("pass", "warn", "fail", "skip")],
            "failed": failed,
        })
    return sorted(rows, key=lambda row: (_ORDER[row["verdict"]], str(row["node"])))


def _failure(check):
    return f"{check['name']}: {_text(check.get('value'))} (threshold {_text(check.get('expected'))})"


def _md(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(rows, title):
    lines = [f"# {title}", "", f"{sum(row['verdict'] == 'fail' for row in rows)} of {len(rows)} nodes failed.", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    for row in rows:
        failures = "<br>".join(("**required** " if check["required"] else "") + _md(_failure(check)) + " - "
                               + _md(check.get("reason", "")) for check in row["failed"]) or "-"
        cells = [_md(row["node"]), row["verdict"].upper(), _md(row["gpus"]), *map(str, row["counts"]), failures]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def page(rows, title):
    esc = html.escape
    body = []
    for row in rows:
        items = "".join(
            f"<li class=\"{'required' if check['required'] else 'optional'}\">"
            f"<span class=\"name\">{esc(check['name'])}</span>: "
            f"value <span class=\"value\">{esc(_text(check.get('value')))}</span>, "
            f"threshold <span class=\"expected\">{esc(_text(check.get('expected')))}</span>"
            f" &mdash; {esc(check.get('reason', ''))}</li>"
            for check in row["failed"])
        cells = "".join(f"<td>{count}</td>" for count in row["counts"])
        body.append(
            f"<tr class=\"{row['verdict']}\"><td class=\"node\">{esc(str(row['node']))}</td>"
            f"<td class=\"verdict\">{row['verdict'].upper()}</td><td>{esc(row['gpus'])}</td>{cells}"
            f"<td class=\"checks\">{'<ul>' + items + '</ul>' if items else '-'}</td></tr>")
    failed = sum(row["verdict"] == "fail" for row in rows)
    head = "".join(f"<th>{esc(column)}</th>" for column in COLUMNS)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>\n"
        f"<h1>{esc(title)}</h1><p>{failed} of {len(rows)} nodes failed.</p>\n"
        f"<table id=\"fleet\"><thead><tr>{head}</tr></thead><tbody>\n" + "\n".join(body) +
        "\n</tbody></table></body></html>\n"
    )


def validate_fleet_report(reports, format="markdown", title="GPU node acceptance"):  # pylint: disable=redefined-builtin
    if format not in FORMATS:
        raise AnsibleFilterError(f"validate_fleet_report: format must be markdown or html, got {format!r}")
    rows = _rows(reports)
    return markdown(rows, title) if format == "markdown" else page(rows, title)


class FilterModule:
    """dlnode.gpu.validate_fleet_report"""

    def filters(self):
        return {"validate_fleet_report": validate_fleet_report}
