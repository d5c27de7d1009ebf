"""The acceptance gate on a GPU-less node: GPU checks skip, node checks measure, reports on node and controller."""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path

from playbook import play, recap

REPORT = "/var/lib/dlnode/validate/report.json"
REPORTS = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "validate-reports"
GPU_CHECKS = ("gpu_model", "driver", "persistence_mode", "pcie_link", "ecc", "memory_health", "clock_events", "mig",
              "nvlink", "fabric_manager", "topology")


def node_report(host):
    return json.loads(host.file(REPORT).content_string)


def by_name(report):
    return {item["name"]: item for item in report["checks"]}


def test_the_gpu_checks_skip_with_their_reason(host):
    checks = by_name(node_report(host))
    for name in GPU_CHECKS:
        assert checks[name]["status"] == "skip", checks[name]
        assert checks[name]["reason"] == "no NVIDIA GPU on the PCI bus", checks[name]
    assert checks["gpu_count"]["status"] in ("pass", "skip"), checks["gpu_count"]
    assert checks["benchmark"]["status"] == "skip" and checks["benchmark"]["reason"] == "no GPU seen by NVML"


def test_the_node_checks_ran_with_measured_values(host):
    report = node_report(host)
    checks = by_name(report)
    assert checks["sysctl"]["status"] == "pass", checks["sysctl"]
    assert checks["sysctl"]["value"] == {"kernel.ostype": "Linux", "kernel.osrelease": platform.release()}
    assert checks["memlock"]["status"] == "pass", checks["memlock"]
    assert checks["memlock"]["value"] == {"logins": {"soft": 65536, "hard": 65536}, "services": 65536}
    assert checks["hugepages"]["status"] == "skip"
    assert report["passed"] is True and report["summary"]["failed"] == []
    assert report["node"] == "dlnode-validate" and report["gpus"] == []


def test_the_report_was_fetched_and_the_fleet_report_written(host):
    fetched = json.loads((REPORTS / "dlnode-validate.json").read_text(encoding="utf-8"))
    assert fetched == node_report(host)
    markdown = (REPORTS / "fleet.md").read_text(encoding="utf-8")
    assert "dlnode-validate" in markdown
    html = (REPORTS / "fleet.html").read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html>") and "dlnode-validate" in html


def test_a_rerun_changes_nothing(host):
    before = host.file(REPORT).mtime
    rc, output = play(host)
    assert rc == 0 and recap(output)["changed"] == 0, output
    assert host.file(REPORT).mtime == before


def test_a_failed_required_check_fails_the_host_naming_it(host, tmp_path):
    extra = {"validate_sysctl": {"kernel.ostype": "Plan9"}, "validate_reports_dir": str(tmp_path),
             "validate_report_path": "/tmp/dlnode-validate-fail.json"}
    rc, output = play(host, "-e", json.dumps(extra))
    assert rc != 0 and recap(output)["failed"] == 1, output
    assert "dlnode-validate failed the acceptance gate" in output, output
    assert 'sysctl = {"kernel.ostype": "Linux"} (expected {"kernel.ostype": "Plan9"})' in output, output
    assert "kernel.ostype = Linux (want Plan9)" in output, output
    failed = json.loads((tmp_path / "dlnode-validate.json").read_text(encoding="utf-8"))
    assert failed["passed"] is False and failed["summary"]["failed_required"] == ["sysctl"]
    assert "Plan9" in (tmp_path / "fleet.md").read_text(encoding="utf-8")
    # The converge's report stays as it was.
    assert node_report(host)["passed"] is True
