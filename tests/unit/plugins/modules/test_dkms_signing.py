"""dlnode.gpu.dkms_signing on a fake root, with the real openssl and a mokutil that answers as mokutil 0.6.0 does."""
from __future__ import annotations

import json
import os
import subprocess

import pytest
from ansible.module_utils import basic

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.modules import dkms_signing

KEY = "/var/lib/dlnode/mok/mok.key"
CERT = "/var/lib/dlnode/mok/mok.der"
DROPIN = "/etc/dkms/framework.conf.d/dlnode-signing.conf"
# mokutil 0.6.0 (Debian 12, Ubuntu 24.04), src/mokutil.c: its words and exit statuses for --test-key.
FAKE_MOKUTIL = """#!/bin/sh
echo "$@" >> "$MOKUTIL_LOG"
case "$MOKUTIL_ANSWER" in
  enrolled) echo "$2 is already enrolled"; exit 1;;
  not-enrolled) echo "$2 is not enrolled"; exit 0;;
  pending) echo "$2 is already in the enrollment request"; exit 1;;
  dbx) echo "$2 is blocked in dbx"; exit 1;;
  no-efi) echo "EFI variables are not supported on this system" >&2; exit 1;;
esac
"""


class Node:
    """A fake root with efivarfs; records the commands the module runs (openssl for real, mokutil faked)."""

    def __init__(self, root):
        self.root, self.commands = root, []

    def path(self, path):
        return self.root / path.lstrip("/")

    def secure_boot(self, value):
        var = self.path("/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c")
        var.parent.mkdir(parents=True, exist_ok=True)
        var.write_bytes(b"\x06\x00\x00\x00" + bytes([value]))

    def files(self):
        """Every file under the root but the fake efivars and tools."""
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*")
                      if p.is_file() and not str(p.relative_to(self.root)).startswith(("sys/", "bin/", "mokutil.log")))

    def openssl(self, *args):
        return subprocess.run(["openssl", *args], check=True, capture_output=True).stdout

    def make_pair(self, key=KEY, cert=CERT, name="own"):
        for path in (key, cert):
            self.path(path).parent.mkdir(parents=True, exist_ok=True)
        self.openssl("req", "-new", "-x509", "-nodes", "-newkey", "rsa:2048", "-subj", f"/CN={name}",
                     "-keyout", str(self.path(key)), "-outform", "DER", "-out", str(self.path(cert)))

    def fingerprint(self, cert=CERT):
        out = self.openssl("x509", "-inform", "DER", "-in", str(self.path(cert)), "-noout", "-fingerprint", "-sha1")
        return out.decode().strip().split("=", 1)[1].lower()


@pytest.fixture
def node(tmp_path, monkeypatch):
    made = Node(tmp_path)
    made.secure_boot(1)
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "mokutil").write_text(FAKE_MOKUTIL)
    (tools / "mokutil").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:{os.environ['PATH']}")
    monkeypatch.setenv("MOKUTIL_ANSWER", "not-enrolled")
    monkeypatch.setenv("MOKUTIL_LOG", str(tmp_path / "mokutil.log"))
    monkeypatch.setattr(files, "ROOT", str(tmp_path))
    run_command = basic.AnsibleModule.run_command

    def recording(self, argv, **kwargs):
        made.commands.append(os.path.basename(argv[0]))
        return run_command(self, argv, **kwargs)

    monkeypatch.setattr(basic.AnsibleModule, "run_command", recording)
    return made


def hide(monkeypatch, tool):
    """As on a node without the tool's package."""
    get_bin_path = basic.AnsibleModule.get_bin_path
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                        lambda self, name, *args, **kwargs: None if name == tool else get_bin_path(self, name, *args, **kwargs))


def test_generates_signs_reports_then_is_idempotent(node, run_module):
    result, failed = run_module(dkms_signing, {}, diff=True)
    assert not failed and result["changed"]
    assert result["plan"] == [f"{KEY}: generate a 2048-bit RSA key and its certificate {CERT}", f"{DROPIN}: write"]
    assert oct(node.path(KEY).stat().st_mode & 0o777) == "0o600"
    assert oct(node.path(KEY).parent.stat().st_mode & 0o777) == "0o700"
    assert oct(node.path(CERT).stat().st_mode & 0o777) == "0o644"
    text = node.openssl("x509", "-inform", "DER", "-in", str(node.path(CERT)), "-noout", "-text").decode()
    assert "Subject: CN = dlnode DKMS module signing key" in text and "Code Signing, 1.3.6.1.4.1.2312.16.1.2" in text
    assert "CA:FALSE" in text
    assert node.path(DROPIN).read_text().endswith(f'mok_signing_key="{KEY}"\nmok_certificate="{CERT}"\n')
    assert {k: v for k, v in result.items() if k not in ("plan", "diff", "manual_steps")} == dict(
        changed=True, secure_boot=True, enrolled=False, enrolment=f"{CERT} is not enrolled", certificate=CERT,
        certificate_sha1=node.fingerprint(),
        reboot_reasons=[f"dkms_signing: MOK {CERT} is not enrolled: modules DKMS signs will not load under Secure Boot"])
    assert result["manual_steps"][0].startswith(f"mokutil --import {CERT} ") and len(result["manual_steps"]) == 4
    assert result["diff"]["before_header"] == DROPIN and result["diff"]["before"] == ""
    assert "PRIVATE KEY" not in json.dumps(result)
    assert (node.path("/mokutil.log")).read_text() == f"--test-key {node.path(CERT)}\n"
    assert node.files() == [DROPIN.lstrip("/"), CERT.lstrip("/"), KEY.lstrip("/")]

    key = node.path(KEY).read_bytes()
    again, failed = run_module(dkms_signing, {})
    assert not failed and not again["changed"] and again["plan"] == []
    assert node.path(KEY).read_bytes() == key and again["certificate_sha1"] == result["certificate_sha1"]


@pytest.mark.parametrize("answer, enrolled, steps, reasons", [
    ("enrolled", True, 0, []),
    ("pending", False, 3, [f"dkms_signing: MOK {CERT} waits for enrolment at the console: "
                           "modules DKMS signs will not load under Secure Boot"]),
])
def test_enrolment_answers(node, run_module, monkeypatch, answer, enrolled, steps, reasons):
    node.make_pair()
    monkeypatch.setenv("MOKUTIL_ANSWER", answer)
    result, failed = run_module(dkms_signing, {})
    assert not failed and result["enrolled"] is enrolled
    assert len(result["manual_steps"]) == steps and result["reboot_reasons"] == reasons
    assert not any(step.startswith("mokutil --import") for step in result["manual_steps"])


def test_no_efi_variables(node, run_module, monkeypatch):
    """A container: no /sys/firmware/efi, mokutil cannot read the enrolment; not an error."""
    for path in sorted(node.path("/sys").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    monkeypatch.setenv("MOKUTIL_ANSWER", "no-efi")
    predicted, failed = run_module(dkms_signing, {}, check_mode=True)
    assert not failed and predicted["enrolled"] is None and predicted["reboot_reasons"] == []
    assert predicted["enrolment"] == f"no EFI variables to read the enrolment of {CERT} from (no EFI, or a container)"
    result, failed = run_module(dkms_signing, {})
    assert not failed and result["changed"] and result["secure_boot"] is None and result["enrolled"] is None
    assert result["enrolment"] == "mokutil: EFI variables are not supported on this system (no EFI, or a container without efivarfs)"
    assert result["manual_steps"] == [] and result["reboot_reasons"] == []


def test_mokutil_missing_is_no_error(node, run_module, monkeypatch):
    hide(monkeypatch, "mokutil")
    result, failed = run_module(dkms_signing, {})
    assert not failed and result["enrolled"] is None and result["enrolment"] == "mokutil is not installed: install mokutil"
    # Secure Boot is on: the operator is told to find out and how to enrol.
    assert result["manual_steps"][0] == (f"find out whether {CERT} is enrolled (mokutil is not installed: install mokutil): "
                                         f"mokutil --test-key {CERT}; if it is not:")
    assert result["reboot_reasons"] == [] and node.path(KEY).exists()


def test_a_blocked_key_fails(node, run_module, monkeypatch):
    node.make_pair()
    monkeypatch.setenv("MOKUTIL_ANSWER", "dbx")
    result, failed = run_module(dkms_signing, {})
    assert failed and result["msg"] == (f"mokutil: {CERT} is blocked in dbx: modules signed with this key will never load; "
                                        "use another key and certificate (the options key and certificate)")


def test_check_mode_plans_and_writes_nothing(node, run_module):
    result, failed = run_module(dkms_signing, {}, check_mode=True, diff=True)
    assert not failed and result["changed"]
    assert result["plan"] == [f"{KEY}: generate a 2048-bit RSA key and its certificate {CERT}", f"{DROPIN}: write"]
    assert result["enrolled"] is False and result["certificate_sha1"] is None and len(result["reboot_reasons"]) == 1
    assert f'mok_signing_key="{KEY}"' in result["diff"]["after"]
    assert node.files() == [] and node.commands == [] and not node.path(KEY).parent.exists()


def test_check_mode_after_a_run_predicts_no_change(node, run_module):
    assert run_module(dkms_signing, {})[0]["changed"]
    result, failed = run_module(dkms_signing, {}, check_mode=True)
    assert not failed and not result["changed"] and result["plan"] == []


def test_an_existing_pair_is_kept(node, run_module):
    """The operator's own key pair (or one already enrolled): used as it is, only the mode of the key fixed."""
    node.make_pair(name="operator")
    node.path(KEY).chmod(0o644)
    key = node.path(KEY).read_bytes()
    result, failed = run_module(dkms_signing, {})
    assert not failed and result["plan"] == [f"{KEY}: mode 0644 -> 0600", f"{DROPIN}: write"]
    assert node.path(KEY).read_bytes() == key and oct(node.path(KEY).stat().st_mode & 0o777) == "0o600"
    assert result["certificate_sha1"] == node.fingerprint()


def test_a_key_without_its_certificate_is_refused(node, run_module):
    node.make_pair()
    node.path(CERT).unlink()
    result, failed = run_module(dkms_signing, {})
    assert failed and result["msg"] == (
        f"key {KEY} exists but certificate {CERT} does not; nothing was changed. A new key is never generated over an "
        "existing one (an enrolled key would stop matching): put its certificate there, or move the key away to "
        "generate a new pair")
    assert node.files() == [KEY.lstrip("/")]


def test_a_certificate_of_another_key_is_refused(node, run_module):
    node.make_pair()
    node.make_pair(key="/tmp/other.key", name="other")
    result, failed = run_module(dkms_signing, {}, check_mode=True)
    assert failed and result["msg"] == (
        f"certificate {CERT} does not hold the public key of key {KEY}; nothing was changed. "
        "Give the certificate made with that key, or move both away to generate a new pair")
    assert not node.path(DROPIN).exists()


def test_a_certificate_openssl_cannot_read_is_refused(node, run_module):
    node.make_pair()
    node.path(CERT).write_bytes(b"not a certificate")
    result, failed = run_module(dkms_signing, {})
    assert failed and result["msg"].startswith(f"certificate: openssl cannot read {CERT} as a DER X.509 certificate: ")


def test_a_lone_certificate_is_replaced(node, run_module):
    """Its key is gone, so nothing can be signed with it: the state an interrupted generation leaves."""
    node.make_pair()
    node.path(KEY).unlink()
    old = node.path(CERT).read_bytes()
    result, failed = run_module(dkms_signing, {})
    assert not failed and result["plan"][0] == (f"{KEY}: generate a 2048-bit RSA key and its certificate {CERT}, "
                                                f"replacing {CERT} that has no key")
    assert node.path(CERT).read_bytes() != old and node.path(KEY).exists()


def test_openssl_missing(node, run_module, monkeypatch, warnings):
    hide(monkeypatch, "openssl")
    result, failed = run_module(dkms_signing, {}, check_mode=True)
    assert not failed and warnings == [f"openssl is not installed: install openssl; the real run needs it to generate {KEY}"]
    result, failed = run_module(dkms_signing, {})
    assert failed and result["msg"] == "openssl is not installed: install openssl"
    assert node.files() == []


def test_absent_removes_the_dropin_and_keeps_the_key(node, run_module):
    run_module(dkms_signing, {})
    key = node.path(KEY).read_bytes()
    result, failed = run_module(dkms_signing, dict(state="absent"), diff=True)
    assert not failed and result["changed"] and result["plan"] == [f"{DROPIN}: remove"]
    assert not node.path(DROPIN).exists() and node.path(KEY).read_bytes() == key and node.path(CERT).exists()
    assert result["enrolled"] is None and result["manual_steps"] == [] and result["reboot_reasons"] == []
    assert not run_module(dkms_signing, dict(state="absent"))[0]["changed"]


def test_own_paths(node, run_module):
    args = dict(key="/root/keys/signing.pem", certificate="/root/certs/signing.der",
                dkms_config="/etc/dkms/framework.conf.d/10-gpu.conf", common_name="node 7", days=3650)
    result, failed = run_module(dkms_signing, args)
    assert not failed and result["certificate"] == "/root/certs/signing.der"
    text = node.openssl("x509", "-inform", "DER", "-in", str(node.path(args["certificate"])), "-noout", "-text").decode()
    assert "Subject: CN = node 7" in text
    assert 'mok_signing_key="/root/keys/signing.pem"' in node.path(args["dkms_config"]).read_text()


@pytest.mark.parametrize("args, msg", [
    (dict(days=0), "days must be at least 1, got 0"),
    (dict(common_name="a/b"), "common_name: 'a/b' must be 1 to 64 characters without '/', '+', '\\' or a newline"),
    (dict(common_name=" "), "common_name: ' ' must be 1 to 64 characters without '/', '+', '\\' or a newline"),
    (dict(key=CERT), f"key and certificate must be two files, both are {CERT}"),
    (dict(dkms_config="/etc/dkms/framework.conf"), "dkms_config: /etc/dkms/framework.conf would not be read by dkms, "
     "which reads /etc/dkms/framework.conf.d/*.conf; give a path there ending in .conf"),
    (dict(dkms_config="/etc/dkms/framework.conf.d/signing"), "dkms_config: /etc/dkms/framework.conf.d/signing would not "
     "be read by dkms, which reads /etc/dkms/framework.conf.d/*.conf; give a path there ending in .conf"),
    (dict(key="/var/lib/dlnode/mok"), "key: /var/lib/dlnode/mok is a directory; give the path of a file"),
    (dict(certificate="/var/lib/dlnode/mok"), "certificate: /var/lib/dlnode/mok is a directory; give the path of a file"),
    (dict(key='/var/lib/a"b.key'), "key: '/var/lib/a\"b.key' holds '\"', which dkms's configuration (shell) cannot "
     "quote; choose a path without them"),
    (dict(key="mok.key"), "key must be an absolute path, got mok.key"),
    (dict(state="on"), "value of state must be one of: present, absent, got: on"),
])
def test_bad_input(node, run_module, args, msg):
    node.path("/var/lib/dlnode/mok").mkdir(parents=True)
    result, failed = run_module(dkms_signing, args)
    assert failed and result["msg"] == msg
    assert node.files() == [] and node.commands == []
