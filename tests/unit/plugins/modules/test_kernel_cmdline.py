"""dlnode.gpu.kernel_cmdline on a fake root, with update-grub and grubby acting on it as the real ones do."""
from __future__ import annotations

import re

import pytest
from ansible.module_utils import basic

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.modules import kernel_cmdline

GRUB_DEFAULT = 'GRUB_CMDLINE_LINUX_DEFAULT="quiet"\n'


class Node:
    """A fake root: /proc/cmdline, /etc/default/grub(.d), grub.cfg, grubby's entries; records commands."""

    def __init__(self, root, tools):
        self.root, self.tools, self.commands = root, tools, []
        self.entries = [["ro", "root=UUID=1", "quiet"], ["ro", "root=UUID=1", "quiet"]]
        self.write("/proc/cmdline", "BOOT_IMAGE=/vmlinuz ro root=UUID=1 quiet\n")

    def path(self, path):
        return self.root / path.lstrip("/")

    def write(self, path, text):
        self.path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path(path).write_text(text)

    def read(self, path):
        return self.path(path).read_text() if self.path(path).exists() else None

    def update_grub(self):
        """Like grub-mkconfig: GRUB_CMDLINE_LINUX_DEFAULT after /etc/default/grub and its drop-ins."""
        value = "quiet"
        dropins = sorted(self.path("/etc/default/grub.d").glob("*.cfg")) if self.path("/etc/default/grub.d").exists() else []
        for dropin in dropins:
            found = re.search(r'GRUB_CMDLINE_LINUX_DEFAULT="\$\{GRUB_CMDLINE_LINUX_DEFAULT\}(.*)"', dropin.read_text())
            if found:
                value += found.group(1)
        # As Debian's grub-mkconfig: the recovery entry gets GRUB_CMDLINE_LINUX only.
        self.write("/boot/grub/grub.cfg", f"\tlinux\t/vmlinuz-6.1 root=UUID=1 ro {value}\n" * 2
                   + "\tlinux\t/vmlinuz-6.1 root=UUID=1 ro single\n")

    def grubby(self, args):
        if args == ["--info=ALL"]:
            return "".join(f'index={i}\nkernel="/boot/vmlinuz"\nargs="{" ".join(e)}"\n' for i, e in enumerate(self.entries))
        for arg in args[1:]:
            name, _sep, value = arg.partition("=")
            for entry in self.entries:
                if name == "--args":
                    entry += [a for a in value.split() if a not in entry]
                else:
                    entry[:] = [a for a in entry if a not in value.split()]
        return ""


@pytest.fixture
def node(tmp_path, monkeypatch):
    made = Node(tmp_path, {"update-grub"})
    monkeypatch.setattr(files, "ROOT", str(tmp_path))

    def get_bin_path(self, name, required=False, opt_dirs=None):
        return f"/usr/sbin/{name}" if name in made.tools else None

    def run_command(self, argv, **kwargs):
        name, args = argv[0].rsplit("/", 1)[-1], argv[1:]
        made.commands.append([name, *args])
        out = made.update_grub() if name == "update-grub" else made.grubby(args)
        return 0, out or "", ""

    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", get_bin_path)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    return made


def test_grub_adds_reads_back_then_is_idempotent(node, run_module):
    result, failed = run_module(kernel_cmdline, dict(name="tuning", args=["iommu=pt", "iommu=pt"]), diff=True)
    assert not failed and result["changed"] and result["bootloader"] == "grub"
    assert result["args"] == ["iommu=pt"] and result["added"] == ["iommu=pt"]
    assert node.read("/etc/default/grub.d/90-dlnode.cfg").endswith(
        'GRUB_CMDLINE_LINUX_DEFAULT="${GRUB_CMDLINE_LINUX_DEFAULT} iommu=pt"\n')
    assert node.commands == [["update-grub"]]
    assert "iommu=pt" in node.read("/boot/grub/grub.cfg")
    assert result["reboot_required"] and result["reboot_reasons"] == ["tuning: kernel command line lacks iommu=pt"]
    assert result["diff"]["before"] == "" and "iommu=pt" in result["diff"]["after"]
    again, failed = run_module(kernel_cmdline, dict(name="tuning", args=["iommu=pt"]))
    assert not failed and not again["changed"] and again["plan"] == [] and node.commands == [["update-grub"]]
    assert again["reboot_required"]
    node.write("/proc/cmdline", "BOOT_IMAGE=/vmlinuz ro root=UUID=1 quiet iommu=pt\n")
    assert run_module(kernel_cmdline, dict(name="tuning", args=["iommu=pt"]))[0]["reboot_reasons"] == []


def test_check_mode_predicts_and_writes_nothing(node, run_module):
    result, failed = run_module(kernel_cmdline, dict(args=["iommu=pt"]), check_mode=True)
    assert not failed and result["changed"] and result["plan"] == [
        "/etc/default/grub.d/90-dlnode.cfg: append iommu=pt", "update-grub: regenerate /boot/grub/grub.cfg"]
    assert node.read("/etc/default/grub.d/90-dlnode.cfg") is None and node.commands == []
    assert result["reboot_required"]


def test_dropped_parameters_are_removed_and_the_rest_kept(node, run_module):
    run_module(kernel_cmdline, dict(args=["iommu=pt", "pci=realloc"]))
    result = run_module(kernel_cmdline, dict(args=["iommu=pt"]))[0]
    assert result["removed"] == ["pci=realloc"] and "pci=realloc" not in node.read("/boot/grub/grub.cfg")
    result = run_module(kernel_cmdline, dict(args=[]))[0]
    assert result["changed"] and result["removed"] == ["iommu=pt"]
    assert node.read("/etc/default/grub.d/90-dlnode.cfg") is None and " quiet\n" in node.read("/boot/grub/grub.cfg")


def test_grubby_adds_to_every_entry_and_removes_only_its_own(node, run_module):
    node.tools = {"grubby"}
    node.entries[1].append("crashkernel=auto")
    result, failed = run_module(kernel_cmdline, dict(name="nvidia_driver", args=["modprobe.blacklist=nouveau", "quiet"]))
    assert not failed and result["bootloader"] == "grubby" and result["added"] == ["modprobe.blacklist=nouveau"]
    assert node.commands[1] == ["grubby", "--update-kernel=ALL", "--args=modprobe.blacklist=nouveau"]
    assert all("modprobe.blacklist=nouveau" in entry for entry in node.entries)
    assert node.read("/etc/dlnode/kernel-cmdline/nvidia_driver.args") == "modprobe.blacklist=nouveau\nquiet\n"
    assert not run_module(kernel_cmdline, dict(name="nvidia_driver", args=["modprobe.blacklist=nouveau", "quiet"]))[0]["changed"]
    result = run_module(kernel_cmdline, dict(name="nvidia_driver", args=["quiet"]))[0]
    assert result["removed"] == ["modprobe.blacklist=nouveau"]
    assert ["grubby", "--update-kernel=ALL", "--remove-args=modprobe.blacklist=nouveau"] in node.commands
    assert node.entries == [["ro", "root=UUID=1", "quiet"], ["ro", "root=UUID=1", "quiet", "crashkernel=auto"]]


def test_a_container_is_skipped_with_the_reason(node, run_module):
    node.write("/run/systemd/container", "docker\n")
    result, failed = run_module(kernel_cmdline, dict(args=["iommu=pt"]))
    assert not failed and not result["changed"] and result["bootloader"] is None
    assert result["skipped_reason"] == "this node is a container (docker): it boots no kernel of its own"
    assert node.commands == [] and not result["reboot_required"]


def test_no_boot_loader_tool_is_skipped_with_the_reason(node, run_module):
    node.tools = set()
    result, failed = run_module(kernel_cmdline, dict(args=["iommu=pt"]))
    assert not failed and result["skipped_reason"] == "grubby or update-grub is not installed: no boot loader to edit"


@pytest.mark.parametrize("args, message", [
    (dict(args=["iommu pt"]), "args: 'iommu pt' is not a kernel parameter (name or name=value, no spaces or quotes)"),
    (dict(args=['a="b c"']), "args: 'a=\"b c\"' is not a kernel parameter"),
    (dict(args=["x"], name="a b"), "name: 'a b' must be letters, digits, '.', '_' and '-'"),
    (dict(args=["x"], grub_dropin="grub.d/x.cfg"), "grub_dropin must be an absolute path, got grub.d/x.cfg"),
    (dict(args=["x"], bootloader="lilo"), "value of bootloader must be one of: auto, grub, grubby, got: lilo"),
])
def test_bad_input_is_refused_naming_the_option(node, run_module, args, message):
    result, failed = run_module(kernel_cmdline, args)
    assert failed and result["msg"].startswith(message) and node.commands == []
