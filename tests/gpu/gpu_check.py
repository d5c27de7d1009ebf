"""The driver of tests/gpu/run.sh: read-only checks of the collection on a real NVIDIA GPU.

It runs tests/gpu/check.yml with ansible-playbook against localhost (connection local, this checkout's
collection): gpu_facts, nvidia_gpu in check mode with the settings of the example inventory's profile,
and the validate gate (gpu_validate in check mode). Then it compares gpu_facts with ``nvidia-smi -q -x``
field by field and prints one summary. Exit status: 0 when every field agrees, nvidia_gpu's check run
succeeded and no required check of the gate failed; 1 otherwise; 0 with "skipped" on a machine
without an NVIDIA GPU and a loaded driver.

Nothing here changes a GPU setting: nvidia_gpu runs in check mode only, gpu_validate only reads (its
report goes to a temporary directory), and nvidia-smi is only asked to print (-q -x).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

CHECKOUT = Path(__file__).resolve().parents[2]
PLAYBOOK = Path(__file__).resolve().parent / "check.yml"
INVENTORY = CHECKOUT / "inventories" / "example" / "group_vars"

# The nvidia_gpu options the gpu_settings role passes (roles/gpu_settings/tasks/apply.yml), by variable.
GPU_SETTINGS = {
    "gpus": "gpu_settings_gpus",
    "persistence_mode": "gpu_settings_persistence_mode",
    "power_limit": "gpu_settings_power_limit",
    "gpu_locked_clocks": "gpu_settings_gpu_locked_clocks",
    "memory_locked_clocks": "gpu_settings_memory_locked_clocks",
    "applications_clocks": "gpu_settings_applications_clocks",
    "compute_mode": "gpu_settings_compute_mode",
    "ecc_mode": "gpu_settings_ecc_mode",
    "mig_mode": "gpu_settings_mig_mode",
    "on_unsupported": "gpu_settings_on_unsupported",
}
# The GPU options of the gate taken from the profile (the node checks are left out: this machine is
# not a node the base roles configured).
NODE_CHECKS = ("hugepages", "io_schedulers", "sysctl", "memlock")
VALIDATE = ("gpu_model", "driver_version", "mig", "threshold_fractions", "required")


# -- nvidia-smi -q -x --------------------------------------------------------------------------------


def _number(text, kind=int):
    """'81559 MiB' -> 81559, '700.00 W' -> 700.0, '16x' -> 16; 'N/A' and friends -> 'unsupported'."""
    if text is None:
        return None
    word = text.strip().split()[0].rstrip("x") if text.strip() else ""
    try:
        return kind(word)
    except ValueError:
        return "unsupported"


def _enabled(text):
    if text in ("Enabled", "Disabled"):
        return text == "Enabled"
    return "unsupported"


def _bus_id(text):
    """nvidia-smi's 00000000:00:06.0 in sysfs form (0000:00:06.0), as gpu_facts reports it."""
    domain, rest = text.split(":", 1)
    return f"{domain[-4:]}:{rest}".lower()


def _text(text):
    return text


def _watts(text):
    return _number(text, float)


def _lower(text):
    return (text or "").lower()


# gpu_facts' field (dotted into its nested dicts), where nvidia-smi -q -x shows it, and how to read it.
# Left out on purpose: values that move between two reads (current clocks, the idle link's generation).
SMI_FIELDS = (
    ("name", "product_name", _text),
    ("uuid", "uuid", _text),
    ("vbios_version", "vbios_version", _text),
    ("memory_total_mib", "fb_memory_usage/total", _number),
    ("persistence_mode", "persistence_mode", _enabled),
    ("compute_mode", "compute_mode", _lower),
    ("ecc_mode.current", "ecc_mode/current_ecc", _enabled),
    ("ecc_mode.pending", "ecc_mode/pending_ecc", _enabled),
    ("mig_mode.current", "mig_mode/current_mig", _enabled),
    ("mig_mode.pending", "mig_mode/pending_mig", _enabled),
    ("pcie.generation_max", "pci/pci_gpu_link_info/pcie_gen/max_link_gen", _number),
    ("pcie.width_max", "pci/pci_gpu_link_info/link_widths/max_link_width", _number),
    ("pcie.width_current", "pci/pci_gpu_link_info/link_widths/current_link_width", _number),
    ("power.limit_w", "gpu_power_readings/current_power_limit", _watts),
    ("power.default_limit_w", "gpu_power_readings/default_power_limit", _watts),
    ("power.min_limit_w", "gpu_power_readings/min_power_limit", _watts),
    ("power.max_limit_w", "gpu_power_readings/max_power_limit", _watts),
    ("clocks.max.graphics", "max_clocks/graphics_clock", _number),
    ("clocks.max.memory", "max_clocks/mem_clock", _number),
    ("clocks.applications.graphics", "applications_clocks/graphics_clock", _number),
    ("clocks.applications.memory", "applications_clocks/mem_clock", _number),
    ("clocks.default_applications.graphics", "default_applications_clocks/graphics_clock", _number),
    ("clocks.default_applications.memory", "default_applications_clocks/mem_clock", _number),
)


def smi_gpus(xml_text):
    """The fields gpu_facts reports, as nvidia-smi -q -x shows them: (driver dict, [per GPU dict])."""
    root = ET.fromstring(xml_text)
    driver = {"driver_version": root.findtext("driver_version"), "cuda_driver_version": root.findtext("cuda_version"),
              "count": _number(root.findtext("attached_gpus"))}
    gpus = []
    for gpu in root.findall("gpu"):
        found = {key: read(gpu.findtext(path)) for key, path, read in SMI_FIELDS}
        found["pci_bus_id"] = _bus_id(gpu.get("id"))
        gpus.append(found)
    return driver, gpus


def _field(gpu, dotted):
    value = gpu
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            return "missing"
        value = value[key]
    return value


def compare(fact, smi_text):
    """[{gpu, field, facts, nvidia_smi, match}] for the driver and every field of every GPU (by UUID, else index)."""
    driver, smi = smi_gpus(smi_text)
    rows = [{"gpu": "-", "field": key, "facts": fact.get(key), "nvidia_smi": value, "match": fact.get(key) == value}
            for key, value in driver.items()]
    gpus = fact.get("gpus") or []
    by_uuid = {gpu.get("uuid"): gpu for gpu in gpus}
    for index, expected in enumerate(smi):
        gpu = by_uuid.get(expected["uuid"]) or (gpus[index] if index < len(gpus) else {})
        for key, value in expected.items():
            found = _field(gpu, key)
            if isinstance(value, float) and isinstance(found, (int, float)) and not isinstance(found, bool):
                match = abs(found - value) < 0.01
            else:
                match = found == value
            rows.append({"gpu": index, "field": key, "facts": found, "nvidia_smi": value, "match": match})
    return rows


# -- what to run ---------------------------------------------------------------------------------------


def _load(path):
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def profile_vars(profile):
    """The gpu_settings and validate variables of the example inventory's profile over the roles' defaults."""
    found = {}
    for path in (CHECKOUT / "roles" / "gpu_settings" / "defaults" / "main.yml",
                 CHECKOUT / "roles" / "validate" / "defaults" / "main.yml",
                 INVENTORY / "gpu_nodes.yml", INVENTORY / f"{profile}.yml"):
        if not path.exists():
            raise SystemExit(f"run.sh: {path} does not exist (DLNODE_GPU_PROFILE={profile}: use h100_training or l4_inference)")
        found.update({key: value for key, value in _load(path).items()
                      if key.startswith(("gpu_settings_", "validate_"))})
    return found


def module_args(profile, gpu_count, torch_python, report_dir):
    """(nvidia_gpu options, gpu_validate options) for the playbook."""
    found = profile_vars(profile)
    settings = {option: found.get(var) for option, var in GPU_SETTINGS.items()}
    settings = {key: value for key, value in settings.items() if value not in (None, {}, [])}
    gate = {key: found.get(f"validate_{key}") for key in VALIDATE}
    gate.update(gpu_count=gpu_count, python=torch_python or "", report_path=str(Path(report_dir) / "report.json"),
                node_name="localhost")
    if gpu_count != found.get("validate_gpu_count"):
        gate["note"] = (f"the profile {profile} expects {found.get('validate_gpu_count')} GPUs; "
                        f"this machine has {gpu_count}, which is what the gate checks")
    return settings, gate


def find_torch_python(given, candidates=("python3",)):
    """The python with torch: DLNODE_TORCH_PYTHON when set, else the first candidate that imports torch, else ''."""
    if given:
        return given
    for name in candidates:
        try:
            done = subprocess.run([name, "-c", "import torch"], capture_output=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return subprocess.run([name, "-c", "import sys; print(sys.executable)"], capture_output=True, text=True,
                                  check=False).stdout.strip()
    return ""


def run_playbook(settings, gate, workdir, python):
    """ansible-playbook tests/gpu/check.yml on localhost; the results it wrote, and its output."""
    out = Path(workdir) / "results.json"
    extra = {"dlnode_gpu_settings": settings, "dlnode_gpu_validate": {k: v for k, v in gate.items() if k != "note"},
             "dlnode_gpu_out": str(out)}
    extra_file = Path(workdir) / "vars.json"
    extra_file.write_text(json.dumps(extra), encoding="utf-8")
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    # ansible-core's own entry point, so wheels unpacked on PYTHONPATH need no scripts on PATH.
    argv = [python, "-m", "ansible", "playbook", "-i", "localhost,", "-c", "local",
            "-e", f"ansible_python_interpreter={python}", "-e", f"@{extra_file}", str(PLAYBOOK)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    output = done.stdout + done.stderr
    if not out.exists():
        return None, done.returncode, output
    return json.loads(out.read_text(encoding="utf-8")), done.returncode, output


# -- the summary -------------------------------------------------------------------------------------


def summarize(rows, results, gate_note=None):
    """(lines, ok): the comparison's mismatches, nvidia_gpu's plan, the gate's counts and failures."""
    lines = []
    mismatched = [row for row in rows if not row["match"]]
    lines.append(f"gpu_facts vs nvidia-smi -q -x: {len(rows) - len(mismatched)}/{len(rows)} fields agree")
    for row in mismatched:
        lines.append(f"  MISMATCH gpu {row['gpu']} {row['field']}: gpu_facts {row['facts']!r}, "
                     f"nvidia-smi {row['nvidia_smi']!r}")
    settings = results.get("nvidia_gpu") or {}
    if settings.get("failed"):
        lines.append(f"nvidia_gpu (check mode): FAILED: {settings.get('msg')}")
    else:
        lines.append(f"nvidia_gpu (check mode, nothing written): changed={settings.get('changed')}")
        for gpu in settings.get("gpus", []):
            would = {name: {"now": gpu.get("before", {}).get(name), "would be": gpu.get("after", {}).get(name)}
                     for name in gpu.get("changed_settings", [])}
            lines.append(f"  gpu {gpu.get('index')}: {'would change ' + json.dumps(would) if would else 'as declared'}"
                         + (f"; skipped {json.dumps(gpu['skipped'])}" if gpu.get("skipped") else ""))
    gate = results.get("gpu_validate") or {}
    if gate.get("failed"):
        lines.append(f"validate gate: FAILED to run: {gate.get('msg')}")
        return lines, False
    summary = gate.get("summary", {})
    lines.append(f"validate gate: {'PASS' if summary.get('passed') else 'FAIL'} {json.dumps(summary.get('counts'))}")
    if gate_note:
        lines.append(f"  note: {gate_note}")
    for check in gate.get("checks", []):
        if check["status"] in ("fail", "warn") or check["name"] == "benchmark" or check["check"].endswith(
                ("tflops", "gbps")):
            lines.append(f"  {check['status']:4} {check['name']}: {json.dumps(check['value'])} "
                         f"(expected {json.dumps(check['expected'])}) {check['reason']}")
    node = [check["name"] for check in gate.get("checks", []) if check["status"] == "skip" and check["name"] in NODE_CHECKS]
    other = [f"{check['name']} ({check['reason']})" for check in gate.get("checks", [])
             if check["status"] == "skip" and check["name"] not in NODE_CHECKS]
    if node:
        lines.append(f"  skipped: {', '.join(node)} (node checks: this machine is not a configured node)")
    if other:
        lines.append(f"  skipped: {'; '.join(other)}")
    ok = not mismatched and not settings.get("failed") and bool(summary.get("passed"))
    return lines, ok


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="the python that runs Ansible and the modules")
    args = parser.parse_args(argv)
    try:
        smi = subprocess.run(["nvidia-smi", "-q", "-x"], capture_output=True, text=True, timeout=120, check=False)
    except FileNotFoundError:
        smi = None
    if smi is None or smi.returncode != 0 or "<gpu " not in smi.stdout:
        why = "nvidia-smi is not installed" if smi is None else (smi.stderr or smi.stdout).strip() or "no GPU listed"
        print(f"dlnode GPU checks: skipped: no NVIDIA GPU with a loaded driver ({why})")
        return 0
    profile = os.environ.get("DLNODE_GPU_PROFILE", "h100_training")
    driver, _gpus = smi_gpus(smi.stdout)
    torch_python = find_torch_python(os.environ.get("DLNODE_TORCH_PYTHON", ""))
    with tempfile.TemporaryDirectory(prefix="dlnode-gpu-") as workdir:
        settings, gate = module_args(profile, driver["count"], torch_python, workdir)
        results, rc, output = run_playbook(settings, gate, workdir, args.python)
    if results is None:
        print(output)
        print(f"dlnode GPU checks: FAILED: ansible-playbook exited {rc} before writing its results")
        return 1
    rows = compare(results["gpu_facts"], smi.stdout)
    lines, ok = summarize(rows, results, gate.get("note"))
    print(f"dlnode GPU checks (read-only), profile {profile}, torch python: {torch_python or 'none (performance skipped)'}")
    print("\n".join(lines))
    print(f"dlnode GPU checks: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
