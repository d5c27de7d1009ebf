"""module_utils.kernel.secure_boot: the SecureBoot variable on a fake tree, and the pure helpers."""
from __future__ import annotations

import subprocess

import pytest

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.module_utils.kernel import secure_boot

CERT = "/var/lib/dlnode/mok/mok.der"


def efivar(root, data, name=secure_boot.SECURE_BOOT_VAR):
    path = root / name.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.mark.parametrize("data, expected", [
    (b"\x06\x00\x00\x00\x01", True),
    (b"\x06\x00\x00\x00\x00", False),
    (b"\x06\x00\x00\x00", None),
])
def test_state_reads_the_value_byte_after_the_attributes(tmp_path, data, expected):
    efivar(tmp_path, data)
    assert secure_boot.state(str(tmp_path)) is expected


def test_state_without_efi_or_efivarfs_is_unknown(tmp_path):
    assert secure_boot.state(str(tmp_path)) is None
    (tmp_path / "sys/firmware/efi").mkdir(parents=True)
    assert secure_boot.state(str(tmp_path)) is None
    (tmp_path / "sys/firmware/efi/efivars").mkdir()
    assert secure_boot.state(str(tmp_path)) is None


def test_state_on_efi_without_the_variable_is_off(tmp_path):
    efivar(tmp_path, b"\x06\x00\x00\x00\x00", secure_boot.EFIVARS_DIR + "/BootOrder-8be4df61-93ca-11d2-aa0d-00e098032b8c")
    assert secure_boot.state(str(tmp_path)) is False


def test_state_unreadable_is_unknown(tmp_path):
    (tmp_path / secure_boot.SECURE_BOOT_VAR.lstrip("/")).mkdir(parents=True)
    assert secure_boot.state(str(tmp_path)) is None


def test_state_uses_the_root_seam(tmp_path, monkeypatch):
    efivar(tmp_path, b"\x06\x00\x00\x00\x01")
    monkeypatch.setattr(files, "ROOT", str(tmp_path))
    assert secure_boot.state() is True


def test_dropin_sets_the_two_variables_dkms_reads():
    text = secure_boot.dropin_content("/k/mok.key", "/k/mok.der")
    assert 'mok_signing_key="/k/mok.key"\nmok_certificate="/k/mok.der"\n' in text
    assert all(line.startswith("#") for line in text.splitlines()[:2])


@pytest.mark.parametrize("option, key, certificate", [
    ("key", '/k/a"b.key', "/k/mok.der"),
    ("certificate", "/k/mok.key", "/k/$HOME.der"),
])
def test_dropin_refuses_what_shell_cannot_quote(option, key, certificate):
    bad = key if option == "key" else certificate
    with pytest.raises(secure_boot.SecureBootError) as err:
        secure_boot.dropin_content(key, certificate)
    assert str(err.value).startswith(f"{option}: {bad!r} holds ")
    assert str(err.value).endswith("which dkms's configuration (shell) cannot quote; choose a path without them")


def test_fingerprint_is_the_one_openssl_and_mokutil_show(tmp_path):
    key, cert = tmp_path / "k", tmp_path / "c"
    subprocess.run(["openssl", "req", "-new", "-x509", "-nodes", "-newkey", "rsa:2048", "-subj", "/CN=t",
                    "-keyout", str(key), "-outform", "DER", "-out", str(cert)], check=True, capture_output=True)
    shown = subprocess.run(["openssl", "x509", "-inform", "DER", "-in", str(cert), "-noout", "-fingerprint", "-sha1"],
                           check=True, capture_output=True, text=True).stdout
    assert secure_boot.fingerprint(cert.read_bytes()) == shown.strip().split("=", 1)[1].lower()


# mokutil 0.6.0's words (src/mokutil.c test_key(), print_skip_message(), main()).
@pytest.mark.parametrize("output, answer", [
    (f"{CERT} is already enrolled\n", (True, False, f"{CERT} is already enrolled")),
    (f"{CERT} is not enrolled\n", (False, False, f"{CERT} is not enrolled")),
    (f"{CERT} is already in the enrollment request\n", (False, True, f"{CERT} is already in the enrollment request")),
    (f"\n{CERT} is already in the built-in trusted keyring\n",
     (True, False, f"{CERT} is already in the built-in trusted keyring")),
    ("\nEFI variables are not supported on this system\n",
     (None, False, "mokutil: EFI variables are not supported on this system (no EFI, or a container without efivarfs)")),
    ("\nFailed to open x\n", (None, False, f"mokutil --test-key {CERT} gave no known answer: Failed to open x")),
])
def test_test_key_answers(output, answer):
    assert secure_boot.test_key_answer(output, CERT) == answer


@pytest.mark.parametrize("where", ["dbx", "MokListXRT"])
def test_a_blocked_key_is_refused(where):
    with pytest.raises(secure_boot.SecureBootError) as err:
        secure_boot.test_key_answer(f"{CERT} is blocked in {where}\n", CERT)
    assert str(err.value) == (f"mokutil: {CERT} is blocked in {where}: modules signed with this key will never load; "
                              "use another key and certificate (the options key and certificate)")


def test_enrolment_steps():
    steps = secure_boot.enrolment_steps(CERT, pending=False)
    assert steps[0].startswith(f"mokutil --import {CERT} ") and "one-time password" in steps[0]
    assert steps[1] == "reboot the node" and '"Enroll MOK"' in steps[2]
    assert secure_boot.enrolment_steps(CERT, pending=True) == steps[1:]
