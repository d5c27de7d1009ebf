# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""UEFI Secure Boot and the Machine Owner Key (MOK) that DKMS signs kernel modules with.

state() reads the firmware's SecureBoot variable; the rest are pure helpers: the DKMS drop-in,
mokutil's answer to --test-key, the certificate's fingerprint and the steps an operator takes
to enrol a key.
"""
from __future__ import annotations

import hashlib
import os

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError

EFI_DIR = "/sys/firmware/efi"
EFIVARS_DIR = "/sys/firmware/efi/efivars"
# EFI_GLOBAL_VARIABLE: the firmware's own variables (UEFI spec, 3.3 Globally Defined Variables).
SECURE_BOOT_VAR = EFIVARS_DIR + "/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
# Characters a path cannot hold in a file that dkms sources as shell between double quotes.
SHELL_UNSAFE = ('"', "$", "`", "\\", "\n")


class SecureBootError(DlnodeError):
    """A key, certificate or enrolment state the module refuses to work with."""


def state(root=None):
    """True when the firmware enforces Secure Boot, False when it does not, None when it cannot be read.

    efivarfs holds each variable as 4 attribute bytes, then its value: SecureBoot's is one byte,
    1 when Secure Boot is on. None: no EFI (a BIOS boot, most containers and VMs), efivarfs not
    mounted or the variable unreadable. An EFI firmware with efivarfs but no SecureBoot variable
    has no Secure Boot: False.
    """
    if not os.path.isdir(files.host_path(EFI_DIR, root)):
        return None
    try:
        if not os.listdir(files.host_path(EFIVARS_DIR, root)):
            return None
        data = files.read(SECURE_BOOT_VAR, root, binary=True)
    except (OSError, files.FileError):
        return None
    if data is None:
        return False
    if len(data) < 5:
        return None
    return data[4] == 1


def check_shell_safe(option, path):
    bad = [char for char in SHELL_UNSAFE if char in path]
    if bad:
        shown = ", ".join(repr(char) for char in bad)
        raise SecureBootError(f"{option}: {path!r} holds {shown}, which dkms's configuration (shell) cannot quote; "
                              "choose a path without them")


def dropin_content(key, certificate):
    """The DKMS framework drop-in that makes dkms sign every module it builds with this key pair.

    dkms reads only these two signing variables from it (safe_source of
    /etc/dkms/framework.conf and /etc/dkms/framework.conf.d/*.conf, dkms 3.0.10 and later).
    """
    check_shell_safe("key", key)
    check_shell_safe("certificate", certificate)
    return ("# Managed by dlnode.gpu (dkms_signing): dkms signs every kernel module it builds with this\n"
            "# Machine Owner Key; the firmware's shim loads them once the certificate is enrolled.\n"
            f'mok_signing_key="{key}"\n'
            f'mok_certificate="{certificate}"\n')


def fingerprint(der):
    """SHA-1 of the DER certificate, as mokutil --list-enrolled prints it (aa:bb:...)."""
    digest = hashlib.sha1(der).hexdigest()  # nosec: a fingerprint, the one mokutil shows
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


# What mokutil --test-key answers (src/mokutil.c, test_key() and print_skip_message(), mokutil
# 0.6.0 in Debian 12 and Ubuntu 24.04, same words in 0.7.x): the phrase after "<cert> ", and
# whether the key is trusted for kernel modules. Its exit status is no guide: 0.6.0 exits 0 for
# "is not enrolled" and 1 for "is already enrolled"; since 0.7.2-6 (commit 9ae73db) both exit 0.
ENROLLED = {
    "is already enrolled": True,
    "is already in the built-in trusted keyring": True,
    "is not enrolled": False,
    "is already in the enrollment request": False,
}
BLOCKED = ("is blocked in dbx", "is blocked in MokListXRT")
NO_EFI = "EFI variables are not supported on this system"


def test_key_answer(output, certificate):
    """(enrolled, pending import, mokutil's words) from mokutil --test-key's stdout and stderr.

    enrolled is None when mokutil cannot tell (no EFI variables: a container, a BIOS boot). A
    certificate the firmware or shim blocks can never be enrolled: SecureBootError.
    """
    words = " ".join(output.split())
    for phrase in BLOCKED:
        if phrase in words:
            raise SecureBootError(f"mokutil: {certificate} {phrase}: modules signed with this key will never load; "
                                  "use another key and certificate (the options key and certificate)")
    for phrase, enrolled in ENROLLED.items():
        if phrase in words:
            return enrolled, phrase == "is already in the enrollment request", f"{certificate} {phrase}"
    if NO_EFI in words:
        return None, False, f"mokutil: {NO_EFI} (no EFI, or a container without efivarfs)"
    return None, False, f"mokutil --test-key {certificate} gave no known answer: {words or 'nothing'}"


def enrolment_steps(certificate, pending):
    """What the operator does at the node and its console to enrol the certificate as a MOK."""
    steps = [] if pending else [
        f"mokutil --import {certificate} (as root; choose a one-time password, asked for once at the console)"]
    return steps + [
        "reboot the node",
        'at the console, MokManager starts before the OS: choose "Enroll MOK", "Continue", "Yes", '
        'enter the one-time password, then "Reboot"',
        f"check: mokutil --test-key {certificate} says it is already enrolled",
    ]
