#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
from __future__ import annotations

DOCUMENTATION = r"""
---
module: dkms_signing
short_description: A Machine Owner Key that DKMS signs every kernel module with, and what its enrolment still needs
version_added: 0.1.0
description:
  - With UEFI Secure Boot on, the kernel loads only signed modules. DKMS builds the NVIDIA driver's
    modules on the node, so it must sign them with a key the firmware's shim trusts, a Machine Owner
    Key (MOK).
  - Generates a 2048-bit RSA key and a self-signed DER certificate with openssl, only when the key is
    missing. An existing key is never replaced (an enrolled key would stop matching); an existing key
    whose certificate is missing or holds another public key is refused, naming both paths.
  - Writes a DKMS framework drop-in setting C(mok_signing_key) and C(mok_certificate), which dkms
    3.0.10 and later (Debian 12, Ubuntu 24.04) read from C(/etc/dkms/framework.conf.d/*.conf).
    Without it, Ubuntu's dkms signs with C(/var/lib/shim-signed/mok/MOK.priv) and Debian's with
    C(/var/lib/dkms/mok.key), each generated on first use.
  - Asks C(mokutil --test-key) whether the certificate is enrolled. Enrolment cannot be done
    unattended (the firmware asks for a password at the console), so when it is missing the module
    returns the steps in RV(manual_steps) and a reason in RV(reboot_reasons); it never reboots.
  - O(state=absent) removes the drop-in only. The key and certificate stay, as they may be enrolled,
    and deleting an enrolled key (C(mokutil --delete)) is the operator's decision.
author: "dlnode.gpu developers (@dlnode)"
options:
  state:
    description: V(present) keeps the key pair and the drop-in; V(absent) removes the drop-in and keeps the key pair.
    type: str
    choices: [present, absent]
    default: present
  key:
    description: The private key (PEM, mode 0600). Its directory is created with mode 0700.
    type: path
    default: /var/lib/dlnode/mok/mok.key
  certificate:
    description: The certificate in DER, the form C(mokutil --import) takes.
    type: path
    default: /var/lib/dlnode/mok/mok.der
  dkms_config:
    description: The drop-in this module owns wholly; dkms reads only C(/etc/dkms/framework.conf.d/*.conf).
    type: path
    default: /etc/dkms/framework.conf.d/dlnode-signing.conf
  common_name:
    description: The certificate's subject CN when a key is generated, shown by C(mokutil --list-enrolled) and MokManager.
    type: str
    default: dlnode DKMS module signing key
  days:
    description: Validity of a generated certificate in days (the kernel and shim do not check expiry).
    type: int
    default: 36500
attributes:
  check_mode:
    support: full
    description: Returns the plan (a key to generate, the drop-in to write or remove); generates, writes and imports nothing.
  diff_mode:
    support: full
    description: Shows the drop-in before and after; never the key.
  platform:
    support: full
    platforms: posix
    description: Linux with openssl (to generate a key) and mokutil (to read the enrolment).
notes:
  - The private key is never returned or shown; only its path is.
  - mokutil answers only where the EFI variables can be read; in a container or on a BIOS boot
    RV(enrolled) is null and RV(enrolment) says why.
"""

EXAMPLES = r"""
- name: Sign the driver's DKMS modules with a MOK
  dlnode.gpu.dkms_signing:
  register: signing

- name: Keep the key, let dkms use its own again
  dlnode.gpu.dkms_signing:
    state: absent
"""

RETURN = r"""
plan:
  description: What was (or in check mode would be) done, in order.
  returned: always
  type: list
  elements: str
  sample: ["/var/lib/dlnode/mok/mok.key: generate a 2048-bit RSA key and its certificate /var/lib/dlnode/mok/mok.der",
           "/etc/dkms/framework.conf.d/dlnode-signing.conf: write"]
secure_boot:
  description: Whether the firmware enforces Secure Boot (efivarfs C(SecureBoot)); null without EFI or efivarfs.
  returned: always
  type: bool
  sample: true
enrolled:
  description: Whether the certificate is an enrolled MOK; null when mokutil cannot tell (see RV(enrolment)).
  returned: always
  type: bool
  sample: false
enrolment:
  description: mokutil's answer, or why there is none.
  returned: always
  type: str
  sample: /var/lib/dlnode/mok/mok.der is not enrolled
certificate:
  description: The certificate's path.
  returned: always
  type: str
  sample: /var/lib/dlnode/mok/mok.der
certificate_sha1:
  description: The certificate's SHA-1 fingerprint as C(mokutil --list-enrolled) prints it; null when there is none (yet).
  returned: always
  type: str
  sample: "3c:8f:0a:5e:7d:21:96:b4:0e:55:a1:2f:c3:98:44:1d:e6:07:b2:9a"
manual_steps:
  description: What the operator does to enrol the certificate; empty when it is enrolled or nothing can be told.
  returned: always
  type: list
  elements: str
  sample: ["mokutil --import /var/lib/dlnode/mok/mok.der (as root; choose a one-time password, asked for once at the console)",
           "reboot the node"]
reboot_reasons:
  description: One line starting with C(dkms_signing:) while the certificate waits for enrolment, for C(dlnode_reboot_reasons).
  returned: always
  type: list
  elements: str
  sample: ["dkms_signing: MOK /var/lib/dlnode/mok/mok.der is not enrolled: modules DKMS signs will not load under Secure Boot"]
"""

import os
import shutil
import stat
import tempfile

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.module_utils.common.commands import CommandError, Commands
from ansible_collections.dlnode.gpu.plugins.module_utils.common.module import run_module
from ansible_collections.dlnode.gpu.plugins.module_utils.common.plans import Plan, Step
from ansible_collections.dlnode.gpu.plugins.module_utils.kernel import secure_boot
from ansible_collections.dlnode.gpu.plugins.module_utils.kernel.secure_boot import SecureBootError

ARGUMENT_SPEC = dict(
    state=dict(type="str", choices=["present", "absent"], default="present"),
    key=dict(type="path", default="/var/lib/dlnode/mok/mok.key"),
    certificate=dict(type="path", default="/var/lib/dlnode/mok/mok.der"),
    dkms_config=dict(type="path", default="/etc/dkms/framework.conf.d/dlnode-signing.conf"),
    common_name=dict(type="str", default="dlnode DKMS module signing key"),
    days=dict(type="int", default=36500),
)
PACKAGES = {"openssl": "openssl", "mokutil": "mokutil"}
# dkms's read_framework_conf(): /etc/dkms/framework.conf, then /etc/dkms/framework.conf.d/*.conf.
DKMS_CONF_DIR = "/etc/dkms/framework.conf.d"
# As Ubuntu's update-secureboot-policy makes its MOK: code signing, and the OID by which shim
# refuses the certificate for boot loaders and kernels (module signing only).
EXTENSIONS = ("extendedKeyUsage=codeSigning,1.3.6.1.4.1.2312.16.1.2", "basicConstraints=critical,CA:FALSE")


def check_params(params):
    """Refuse bad input before anything is read or written."""
    if params["days"] < 1:
        raise SecureBootError(f"days must be at least 1, got {params['days']}")
    name = params["common_name"]
    if not name.strip() or len(name) > 64 or any(char in name for char in "/+\\\n"):
        raise SecureBootError(f"common_name: {name!r} must be 1 to 64 characters without '/', '+', '\\' or a newline")
    if params["key"] == params["certificate"]:
        raise SecureBootError(f"key and certificate must be two files, both are {params['key']}")
    config = params["dkms_config"]
    if os.path.dirname(config) != DKMS_CONF_DIR or not config.endswith(".conf"):
        raise SecureBootError(f"dkms_config: {config} would not be read by dkms, which reads "
                              f"{DKMS_CONF_DIR}/*.conf; give a path there ending in .conf")
    for option in ("key", "certificate"):
        secure_boot.check_shell_safe(option, params[option])
    for option in ("key", "certificate", "dkms_config"):
        if os.path.isdir(files.host_path(params[option])):
            raise SecureBootError(f"{option}: {params[option]} is a directory; give the path of a file")


def public_key(commands, option, path):
    """The PEM public key openssl reads from the key or the certificate; SecureBootError naming the option."""
    real = files.host_path(path)
    if option == "key":
        # An empty pass phrase: an encrypted key fails at once instead of prompting (sign-file could not use it either).
        args, what = ("pkey", "-in", real, "-passin", "pass:", "-pubout"), "an unencrypted private key"
    else:
        args, what = ("x509", "-inform", "DER", "-in", real, "-noout", "-pubkey"), "a DER X.509 certificate"
    try:
        return commands.run("openssl", *args).strip()
    except CommandError as err:
        raise SecureBootError(f"{option}: openssl cannot read {path} as {what}: {err}") from err


def check_pair(module, commands, key, certificate):
    """Refuse a certificate that does not hold the key's public key (openssl reads both, writes nothing)."""
    if commands.path("openssl") is None:
        module.warn(f"openssl is not installed: install openssl; whether {certificate} matches {key} is not checked")
        return
    if public_key(commands, "key", key) != public_key(commands, "certificate", certificate):
        raise SecureBootError(f"certificate {certificate} does not hold the public key of key {key}; nothing was changed. "
                              "Give the certificate made with that key, or move both away to generate a new pair")


def generate(module, commands, params):
    """A new key pair: made in a private temp directory, the certificate written, then the key moved in."""
    key, certificate = params["key"], params["certificate"]
    key_dir = files.host_path(os.path.dirname(key))
    if not os.path.isdir(key_dir):
        os.makedirs(key_dir)
        os.chmod(key_dir, 0o700)
    work = tempfile.mkdtemp(prefix=".dlnode-mok-", dir=key_dir)
    try:
        new_key, new_cert = os.path.join(work, "key"), os.path.join(work, "cert")
        commands.run("openssl", "req", "-new", "-x509", "-nodes", "-newkey", "rsa:2048", "-days", params["days"],
                     "-subj", f"/CN={params['common_name']}", *[arg for ext in EXTENSIONS for arg in ("-addext", ext)],
                     "-keyout", new_key, "-outform", "DER", "-out", new_cert)
        with open(new_cert, "rb") as handle:
            files.write(module, files.FileChange(certificate, None, handle.read()))
        # Last: a key without its certificate is refused on the next run, a lone certificate is replaced.
        os.chmod(new_key, 0o600)
        os.rename(new_key, files.host_path(key))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def key_mode(key):
    real = files.host_path(key)
    return stat.S_IMODE(os.stat(real).st_mode) if os.path.isfile(real) else None


def plan_key(module, commands, params):
    """The steps that make the key pair usable, after refusing one that cannot be used."""
    key, certificate = params["key"], params["certificate"]
    have_key, have_cert = (os.path.isfile(files.host_path(path)) for path in (key, certificate))
    if have_key and not have_cert:
        raise SecureBootError(f"key {key} exists but certificate {certificate} does not; nothing was changed. "
                              "A new key is never generated over an existing one (an enrolled key would stop matching): "
                              "put its certificate there, or move the key away to generate a new pair")
    if have_key:
        check_pair(module, commands, key, certificate)
        mode = key_mode(key)
        if mode == 0o600:
            return []
        return [Step("chmod", key, f"{mode:04o}", "0600", text=f"{key}: mode {mode:04o} -> 0600",
                     call=lambda: os.chmod(files.host_path(key), 0o600))]
    if commands.path("openssl") is None:
        if not module.check_mode:
            commands.require("openssl")
        module.warn(f"openssl is not installed: install openssl; the real run needs it to generate {key}")
    replaced = f", replacing {certificate} that has no key" if have_cert else ""
    return [Step("generate", key, None, certificate, call=lambda: generate(module, commands, params),
                 text=f"{key}: generate a 2048-bit RSA key and its certificate {certificate}{replaced}")]


def plan_dropin(module, params, present):
    content = secure_boot.dropin_content(params["key"], params["certificate"]) if present else None
    change = files.plan(params["dkms_config"], content)
    if not change.changed:
        return [], change

    def apply():
        if content is None:
            os.remove(files.host_path(change.path))
        else:
            files.write(module, change)
    return [Step("dropin", change.path, change.before, change.after, call=apply,
                 text=f"{change.path}: {'write' if present else 'remove'}")], change


def enrolment(commands, certificate, planned_key, efi):
    """(enrolled, pending import, why) from mokutil --test-key (read-only, also in check mode).

    A key check mode would generate is not there to ask about: not enrolled, or, where the EFI
    variables cannot be read (efi None), unknown as mokutil would then answer.
    """
    try:
        commands.require("mokutil")
    except CommandError as err:
        return None, False, str(err)
    if planned_key:
        if efi is None:
            return None, False, f"no EFI variables to read the enrolment of {certificate} from (no EFI, or a container)"
        return False, False, f"{certificate} is generated by this run: not enrolled yet"
    _rc, out, err = commands.result("mokutil", "--test-key", files.host_path(certificate))
    return secure_boot.test_key_answer(f"{out}\n{err}".replace(files.host_path(certificate), certificate), certificate)


def read_back(module, commands, params, change):
    """After a real run: the drop-in as planned and a key pair that matches."""
    if files.read(change.path) != change.after:
        raise SecureBootError(f"{change.path} reads back other than written")
    if change.after is not None:
        for option in ("key", "certificate"):
            if not os.path.isfile(files.host_path(params[option])):
                raise SecureBootError(f"{option}: {params[option]} is missing after the run")
        check_pair(module, commands, params["key"], params["certificate"])


def run(module, result):
    params = module.params
    check_params(params)
    present = params["state"] == "present"
    commands = Commands(module, PACKAGES)
    steps = plan_key(module, commands, params) if present else []
    dropin_steps, change = plan_dropin(module, params, present)
    plan = Plan(steps + dropin_steps)
    result.update(plan=plan.texts(), secure_boot=secure_boot.state(), certificate=params["certificate"],
                  changed=plan.changed, diff=change.diff())
    plan.apply(module)
    if plan.changed and not module.check_mode:
        read_back(module, commands, params, change)
    # In check mode a key to generate is not there yet: no fingerprint, not enrolled.
    planned_key = module.check_mode and any(step.action == "generate" for step in plan.changes)
    der = None if planned_key else files.read(params["certificate"], binary=True)
    result.update(certificate_sha1=None if der is None else secure_boot.fingerprint(der))
    if not present:
        result.update(enrolment="state is absent: the enrolment was not read")
        return
    enrolled, pending, why = enrolment(commands, params["certificate"], planned_key, result["secure_boot"])
    result.update(enrolled=enrolled, enrolment=why)
    if enrolled is False:
        state = "waits for enrolment at the console" if pending else "is not enrolled"
        result.update(manual_steps=secure_boot.enrolment_steps(params["certificate"], pending),
                      reboot_reasons=[f"dkms_signing: MOK {params['certificate']} {state}: "
                                      "modules DKMS signs will not load under Secure Boot"])
    elif enrolled is None and result["secure_boot"]:
        # Secure Boot is on and the enrolment unknown: the operator checks, and enrols if need be.
        result.update(manual_steps=[f"find out whether {params['certificate']} is enrolled ({why}): "
                                    f"mokutil --test-key {params['certificate']}; if it is not:",
                                    *secure_boot.enrolment_steps(params["certificate"], False)])


def main():
    run_module(ARGUMENT_SPEC, run, result=dict(plan=[], secure_boot=None, enrolled=None, enrolment=None, certificate=None,
                                               certificate_sha1=None, manual_steps=[], reboot_reasons=[]))


if __name__ == "__main__":
    main()
