# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""OpenPGP public keys in pure Python: armor, packets, v4 fingerprints, and the check against
the fingerprints a caller expects.

No gpg is needed, so a check run on a bare server checks a key exactly as the real run does,
and writes nothing. Only what a repository signing key needs is read (RFC 4880 / RFC 9580):
public-key and public-subkey packets are hashed, user IDs named, signatures passed over
(apt's gpgv and rpm check them); secret keys and anything that is not a key are refused.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re

from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError

BEGIN = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
END = "-----END PGP PUBLIC KEY BLOCK-----"
TAG_SIGNATURE, TAG_SECRET_KEY, TAG_PUBLIC_KEY, TAG_SECRET_SUBKEY = 2, 5, 6, 7
TAG_TRUST, TAG_USER_ID, TAG_PUBLIC_SUBKEY, TAG_USER_ATTRIBUTE = 12, 13, 14, 17
# Packets a transferable public key may hold besides keys and user IDs.
PASSED_OVER = {TAG_SIGNATURE, TAG_TRUST, TAG_USER_ATTRIBUTE}
FINGERPRINT_RE = re.compile(r"^[0-9A-F]{40}$")


class PgpKeyError(DlnodeError):
    """A key that cannot be read, or is not the one expected; str() says which and why."""


class Certificate:
    """One primary key with its subkeys, as gpg --show-keys lists it."""

    def __init__(self, fingerprint):
        self.fingerprint = fingerprint
        self.subkeys = []
        self.user_ids = []

    @property
    def fingerprints(self):
        return [self.fingerprint, *self.subkeys]

    def describe(self):
        name = f" ({self.user_ids[0]})" if self.user_ids else ""
        subkeys = f", subkeys {', '.join(self.subkeys)}" if self.subkeys else ""
        return f"{self.fingerprint}{name}{subkeys}"

    def public(self):
        return {"fingerprint": self.fingerprint, "subkeys": self.subkeys, "user_ids": self.user_ids}


def crc24(data):
    """The armor checksum (RFC 4880 6.1)."""
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _bit in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def dearmor(text, option="key"):
    """The binary packets of every public key block in text, checksums checked."""
    blocks = re.findall(re.escape(BEGIN) + r"(.*?)" + re.escape(END), text, re.S)
    if not blocks:
        raise PgpKeyError(f"{option}: not an ASCII-armored OpenPGP public key (no '{BEGIN}' ... '{END}' block)")
    data = b""
    for block in blocks:
        lines = [line.strip() for line in block.strip("\r\n").splitlines()]
        # Armor headers (Version:, Comment:) end at the first empty line.
        if any(":" in line for line in lines[:1]) and "" in lines:
            lines = lines[lines.index("") + 1:]
        checksum = None
        if lines and lines[-1].startswith("="):
            checksum = lines.pop()
        try:
            body = base64.b64decode("".join(lines), validate=True)
            expected = int.from_bytes(base64.b64decode(checksum[1:], validate=True), "big") if checksum else None
        except (binascii.Error, ValueError) as exc:
            raise PgpKeyError(f"{option}: the armored key is damaged: its base64 does not decode ({exc})") from exc
        if expected is not None and crc24(body) != expected:
            raise PgpKeyError(f"{option}: the armored key is damaged: its checksum {checksum} does not match its content")
        data += body
    return data


def armor(data):
    """ASCII armor of binary key packets, with its checksum."""
    text = base64.b64encode(data).decode("ascii")
    lines = [text[i:i + 64] for i in range(0, len(text), 64)]
    checksum = base64.b64encode(crc24(data).to_bytes(3, "big")).decode("ascii")
    return "\n".join([BEGIN, "", *lines, "=" + checksum, END]) + "\n"


def is_armored(data):
    return data.lstrip()[:len(BEGIN)] == BEGIN.encode("ascii")


def packets(data, option="key"):
    """(tag, body) of each packet, old and new formats (RFC 4880 4.2)."""
    found = []
    pos = 0
    while pos < len(data):
        head = data[pos]
        if not head & 0x80:
            raise PgpKeyError(f"{option}: not an OpenPGP key: byte {pos} is no packet header")
        if head & 0x40:  # new format
            tag = head & 0x3F
            first = data[pos + 1] if pos + 1 < len(data) else None
            if first is None:
                raise PgpKeyError(f"{option}: the key is cut short at byte {pos}")
            if first < 192:
                length, start = first, pos + 2
            elif first < 224:
                length, start = ((first - 192) << 8) + data[pos + 2] + 192, pos + 3
            elif first == 255:
                length, start = int.from_bytes(data[pos + 2:pos + 6], "big"), pos + 6
            else:
                raise PgpKeyError(f"{option}: packet {tag} at byte {pos} has a partial length, which no key packet has")
        else:
            tag = (head >> 2) & 0x0F
            size = {0: 1, 1: 2, 2: 4}.get(head & 0x03)
            if size is None:
                length, start = len(data) - pos - 1, pos + 1
            else:
                length, start = int.from_bytes(data[pos + 1:pos + 1 + size], "big"), pos + 1 + size
        if start + length > len(data):
            raise PgpKeyError(f"{option}: the key is cut short: packet {tag} at byte {pos} needs {length} bytes")
        found.append((tag, data[start:start + length]))
        pos = start + length
    return found


def fingerprint(body, option="key"):
    """The v4 fingerprint of a public-key or public-subkey packet body: SHA-1 over 0x99, its length, the body."""
    version = body[0] if body else None
    if version != 4:
        raise PgpKeyError(f"{option}: the key is an OpenPGP version {version} key; only version 4 keys are supported "
                          "(what repositories sign with)")
    return hashlib.sha1(b"\x99" + len(body).to_bytes(2, "big") + body).hexdigest().upper()  # nosec B324 - RFC 4880


def certificates(data, option="key"):
    """The certificates (primary key, subkeys, user IDs) in binary key data."""
    found = []
    for tag, body in packets(data, option):
        if tag in (TAG_SECRET_KEY, TAG_SECRET_SUBKEY):
            raise PgpKeyError(f"{option}: holds a secret key; give the public key only (gpg --export, never --export-secret-keys)")
        if tag == TAG_PUBLIC_KEY:
            found.append(Certificate(fingerprint(body, option)))
        elif not found:
            raise PgpKeyError(f"{option}: not an OpenPGP public key: its first packet is of type {tag}, not a public key")
        elif tag == TAG_PUBLIC_SUBKEY:
            found[-1].subkeys.append(fingerprint(body, option))
        elif tag == TAG_USER_ID:
            found[-1].user_ids.append(body.decode("utf-8", "replace"))
        elif tag not in PASSED_OVER:
            raise PgpKeyError(f"{option}: not an OpenPGP public key: it holds a packet of type {tag}")
    if not found:
        raise PgpKeyError(f"{option}: holds no public key")
    return found


def normalize(fingerprints, option="fingerprints"):
    """Full fingerprints, upper case, spaces and a 0x prefix dropped; a key ID is refused."""
    normal = []
    for value in fingerprints:
        text = re.sub(r"\s+", "", str(value)).upper()
        text = text[2:] if text.startswith("0X") else text
        if not FINGERPRINT_RE.match(text):
            raise PgpKeyError(f"{option}: {value!r} is not a full OpenPGP v4 fingerprint (40 hex digits); a short or "
                              "long key ID is not enough to tell a key from a forged one")
        normal.append(text)
    return normal


def check(certs, expected, option="fingerprints"):
    """Refuse key data that is not exactly the expected keys.

    Every expected fingerprint must be a key in the data (a primary key or a subkey), and every
    certificate in the data must be expected (by its primary key or one of its subkeys): no
    other key may slip into the keyring with the expected one.
    """
    known = {fpr for cert in certs for fpr in cert.fingerprints}
    missing = [fpr for fpr in expected if fpr not in known]
    extra = [cert for cert in certs if not set(cert.fingerprints) & set(expected)]
    if missing or extra:
        holds = "; ".join(cert.describe() for cert in certs)
        why = []
        if missing:
            why.append(f"{', '.join(missing)} not in it")
        if extra:
            why.append(f"{', '.join(cert.fingerprint for cert in extra)} not expected")
        raise PgpKeyError(f"{option}: the key does not match: it holds {holds}; expected {', '.join(expected)} "
                          f"({'; '.join(why)})")
