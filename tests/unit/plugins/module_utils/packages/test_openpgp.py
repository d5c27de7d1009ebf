"""OpenPGP fingerprints in pure Python, checked against gpg on real keys: Debian's archive keys on this
machine and a key gpg generates here."""
from __future__ import annotations

import glob
import shutil
import subprocess
from pathlib import Path

import pytest

from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError
from ansible_collections.dlnode.gpu.plugins.module_utils.packages import openpgp

FIXTURES = Path(__file__).resolve().parents[4] / "fixtures" / "openpgp"
KEYRINGS = sorted(glob.glob("/usr/share/keyrings/debian-archive-*.gpg"))
BOOKWORM = "/usr/share/keyrings/debian-archive-bookworm-automatic.gpg"
BOOKWORM_FPR = "B8B80B5B623EAB6AD8775C45B7C5D7D6350947F8"
BOOKWORM_SUB = "4CB50190207B4758A3F73A796ED0E7B82643E131"
needs_gpg = pytest.mark.skipif(shutil.which("gpg") is None, reason="gpg is not installed")
needs_keyrings = pytest.mark.skipif(not KEYRINGS, reason="Debian's archive keyrings are not on this machine")


@pytest.fixture(scope="module")
def gpg_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    yield home
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False, capture_output=True)


def gpg(home, *args, data=None):
    return subprocess.run(["gpg", "--homedir", str(home), "--batch", *args], input=data, capture_output=True,
                          check=True).stdout


def gpg_fingerprints(home, path):
    """Every fingerprint gpg lists for a key file, primary keys and subkeys in order."""
    out = gpg(home, "--show-keys", "--with-colons", path).decode()
    return [line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:")]


@needs_gpg
@needs_keyrings
@pytest.mark.parametrize("path", KEYRINGS)
def test_fingerprints_of_debians_keyrings_match_gpg(gpg_home, path):
    with open(path, "rb") as handle:
        certs = openpgp.certificates(handle.read())
    assert [fpr for cert in certs for fpr in cert.fingerprints] == gpg_fingerprints(gpg_home, path)


@needs_keyrings
def test_the_bookworm_archive_key():
    with open(BOOKWORM, "rb") as handle:
        cert, = openpgp.certificates(handle.read())
    assert cert.public() == {"fingerprint": BOOKWORM_FPR, "subkeys": [BOOKWORM_SUB],
                             "user_ids": ["Debian Archive Automatic Signing Key (12/bookworm) <ftpmaster@debian.org>"]}


def fixture(name):
    return (FIXTURES / name).read_text()


def colons_fingerprints(text):
    return [line.split(":")[9] for line in text.splitlines() if line.startswith("fpr:")]


@pytest.mark.parametrize("name", ["repository", "other", "both"])
def test_keys_generated_with_gpg(name):
    """rsa3072 with an rsa3072 signing subkey, ed25519 with a cv25519 subkey, and both in one file: the fingerprints
    gpg --show-keys --with-colons printed when it generated them (tests/fixtures/openpgp/)."""
    certs = openpgp.certificates(openpgp.dearmor(fixture(f"{name}.asc")))
    assert [fpr for cert in certs for fpr in cert.fingerprints] == colons_fingerprints(fixture(f"{name}.colons"))
    assert all(len(cert.fingerprints) == 2 for cert in certs)


@needs_gpg
def test_armor_round_trips_through_gpg(gpg_home):
    armored = fixture("both.asc")
    binary = gpg(gpg_home, "--dearmor", data=armored.encode())
    assert openpgp.dearmor(armored) == binary
    assert gpg(gpg_home, "--dearmor", data=openpgp.armor(binary).encode()) == binary
    assert openpgp.dearmor(openpgp.armor(binary)) == binary


def test_armor_headers_and_several_blocks():
    armored = fixture("other.asc")
    with_header = armored.replace("-----\n\n", "-----\nComment: shipped by the role\n\n", 1)
    assert with_header != armored
    assert openpgp.dearmor(with_header + fixture("repository.asc")) == \
        openpgp.dearmor(armored) + openpgp.dearmor(fixture("repository.asc"))


def test_a_damaged_armor_is_refused():
    armored = fixture("repository.asc")
    line = armored.splitlines()[3]
    flipped = line[:10] + ("A" if line[10] != "A" else "B") + line[11:]
    with pytest.raises(DlnodeError, match=r"^key: the armored key is damaged: its checksum =\S+ does not match its content$"):
        openpgp.dearmor(armored.replace(line, flipped))
    with pytest.raises(DlnodeError, match="^key: the armored key is damaged: its base64 does not decode"):
        openpgp.dearmor(armored.replace(line, line[:-1] + "*"))


def test_text_that_is_no_key_is_refused():
    with pytest.raises(DlnodeError) as err:
        openpgp.dearmor("ssh-ed25519 AAAAC3Nza... me@host")
    assert str(err.value) == ("key: not an ASCII-armored OpenPGP public key (no '-----BEGIN PGP PUBLIC KEY BLOCK-----' "
                              "... '-----END PGP PUBLIC KEY BLOCK-----' block)")


def test_a_secret_key_is_refused():
    # An old-format packet of type 5 (secret key): refused by its type, before its body is read.
    with pytest.raises(DlnodeError) as err:
        openpgp.certificates(bytes([0x95, 0, 3]) + b"abc", "key_url")
    assert str(err.value) == ("key_url: holds a secret key; give the public key only (gpg --export, never "
                              "--export-secret-keys)")


def test_a_version_3_key_is_refused():
    body = bytes([3]) + bytes(10)
    with pytest.raises(DlnodeError) as err:
        openpgp.certificates(bytes([0x99, 0, len(body)]) + body)
    assert str(err.value) == ("key: the key is an OpenPGP version 3 key; only version 4 keys are supported (what "
                              "repositories sign with)")


@pytest.mark.parametrize("data, message", [
    (b"\x00\x01", "key: not an OpenPGP key: byte 0 is no packet header"),
    (bytes([0x99, 0, 50]) + bytes(5), "key: the key is cut short: packet 6 at byte 0 needs 50 bytes"),
    (bytes([0xCD, 3]) + b"abc", "key: not an OpenPGP public key: its first packet is of type 13, not a public key"),
    (b"", "key: holds no public key"),
])
def test_broken_key_data(data, message):
    with pytest.raises(DlnodeError) as err:
        openpgp.certificates(data)
    assert str(err.value) == message


@pytest.mark.parametrize("value, normal", [
    ("B8B8 0B5B 623E AB6A D877  5C45 B7C5 D7D6 3509 47F8", BOOKWORM_FPR),
    ("0xb8b80b5b623eab6ad8775c45b7c5d7d6350947f8", BOOKWORM_FPR),
])
def test_fingerprints_are_normalized(value, normal):
    assert openpgp.normalize([value]) == [normal]


@pytest.mark.parametrize("value", ["6350947F8", "B7C5D7D6350947F8", "not hex at all"])
def test_a_key_id_is_not_a_fingerprint(value):
    with pytest.raises(DlnodeError) as err:
        openpgp.normalize([value])
    assert str(err.value) == (f"fingerprints: {value!r} is not a full OpenPGP v4 fingerprint (40 hex digits); a short "
                              "or long key ID is not enough to tell a key from a forged one")


@needs_keyrings
def test_check_takes_the_primary_or_a_subkey():
    with open(BOOKWORM, "rb") as handle:
        certs = openpgp.certificates(handle.read())
    openpgp.check(certs, [BOOKWORM_FPR])
    openpgp.check(certs, [BOOKWORM_SUB])


@needs_keyrings
def test_check_refuses_a_key_that_is_not_the_one_expected():
    with open(BOOKWORM, "rb") as handle:
        certs = openpgp.certificates(handle.read())
    with pytest.raises(DlnodeError) as err:
        openpgp.check(certs, ["0" * 40])
    assert str(err.value) == (
        f"fingerprints: the key does not match: it holds {BOOKWORM_FPR} (Debian Archive Automatic Signing Key "
        f"(12/bookworm) <ftpmaster@debian.org>), subkeys {BOOKWORM_SUB}; expected {'0' * 40} "
        f"({'0' * 40} not in it; {BOOKWORM_FPR} not expected)")


@needs_keyrings
def test_check_refuses_an_extra_key_in_the_data():
    with open("/usr/share/keyrings/debian-archive-keyring.gpg", "rb") as handle:
        certs = openpgp.certificates(handle.read())
    with pytest.raises(DlnodeError, match=r"^fingerprints: the key does not match: .* not expected\)$"):
        openpgp.check(certs, [BOOKWORM_FPR])
