"""package_source and package_set against Debian's real signed archive, on a node without python3-apt.

The tests run in file order: the state converge left, then refusals that must leave the node as it was,
then the move to the backports version in one run, then the set removed.
"""
from __future__ import annotations

import json

OLD, NEW = "7.2.3+ds-1", "7.3.2+ds-1~bpo12+1"
SOURCE = "/etc/apt/sources.list.d/bookworm-backports.sources"
KEYRING = "/etc/apt/keyrings/bookworm-backports.gpg"
SOURCE_PIN = "/etc/apt/preferences.d/bookworm-backports.pref"
PIN = "/etc/apt/preferences.d/dlnode-test_lock.pref"
BLACKLIST = "/etc/apt/apt.conf.d/52dlnode-test_lock-unattended-upgrades"
RECORD = "/etc/dlnode/package-sets/test_lock.versions"
BOOKWORM_KEY = "/usr/share/keyrings/debian-archive-bookworm-automatic.gpg"
BOOKWORM_FPR = "B8B80B5B623EAB6AD8775C45B7C5D7D6350947F8"
BULLSEYE_KEY = "/usr/share/keyrings/debian-archive-bullseye-automatic.gpg"
BULLSEYE_FPR = "1F89983E0081FDE018F3CC9673A4F27B8DD47936"


def module(host, module_name, check=False, **args):
    # Not host.ansible: under ansible-core 2.21 the tree callback it reads leaves "failed" out of results.
    return host.backend.run_ansible(f"dlnode.gpu.{module_name}", json.dumps(args), check=check, become=True)


def sources(host, name="bookworm-backports", **args):
    mirror = host.check_output("sed -n 's/^deb \\(\\S*\\) bookworm main$/\\1/p' /etc/apt/sources.list")
    base = dict(name=name, url=mirror, suites=["bookworm-backports"], components=["main"],
                key_url=f"file://{BOOKWORM_KEY}", fingerprints=[BOOKWORM_FPR])
    return module(host, "package_source", **{**base, **args})


def lock(host, packages, check=False, name="test_lock", **args):
    return module(host, "package_set", check=check, name=name, packages=packages, **args)


def apt_files(host):
    """Every file of apt's configuration and the set records, with mode and checksum."""
    return host.check_output("find /etc/apt /etc/dlnode -type f -printf '%p %m ' -exec md5sum {} \\; | sort")


def packages(host):
    return host.check_output("dpkg-query -W -f '${Package} ${db:Status-Abbrev}${Version}\\n' libcext0 libcext-dev")


def policy(host, name):
    """{version: priority} and the candidate, from apt-cache policy."""
    lines = host.check_output(f"apt-cache policy {name}").splitlines()
    candidate = next(line.split()[1] for line in lines if line.strip().startswith("Candidate:"))
    table = {}
    for line in lines[lines.index("  Version table:") + 1:]:
        words = line.replace("***", "").split()
        if len(words) == 2 and not words[1].startswith("/"):
            table[words[0]] = int(words[1])
    return candidate, table


# -- what converge left --------------------------------------------------------


def test_the_node_still_has_no_python3_apt(host):
    assert not host.package("python3-apt").is_installed


def test_the_set_is_installed_and_held_at_the_bookworm_version(host):
    assert packages(host).splitlines() == [f"libcext-dev hi {OLD}", f"libcext0 hi {OLD}"]
    assert host.check_output("apt-mark showhold").split() == ["libcext-dev", "libcext0"]


def test_the_source_is_signed_by_the_keyring_and_apt_uses_it(host):
    text = host.file(SOURCE).content_string
    assert "Suites: bookworm-backports\nComponents: main\n" in text and f"Signed-By: {KEYRING}\n" in text
    assert host.file(KEYRING).mode == 0o644
    # apt verified the InRelease with the keyring: backports' lists are there, at the source pin's 600.
    assert " 600 " in host.check_output("apt-cache policy | grep -A1 bookworm-backports/main")
    assert "Pin: release n=bookworm-backports\nPin-Priority: 600\n" in host.file(SOURCE_PIN).content_string


def test_the_version_pin_beats_the_source_pin(host):
    # Backports is pinned at 600 and has the newer version; the set's 1001 keeps bookworm's.
    assert policy(host, "libcext0") == (OLD, {NEW: 600, OLD: 1001})
    assert f"Package: libcext0\nPin: version {OLD}\nPin-Priority: 1001\n" in host.file(PIN).content_string


def test_unattended_upgrades_reads_the_exclusion(host):
    dump = host.check_output("apt-config dump Unattended-Upgrade::Package-Blacklist")
    assert 'Unattended-Upgrade::Package-Blacklist:: "^libcext0$";' in dump
    assert 'Unattended-Upgrade::Package-Blacklist:: "^libcext-dev$";' in dump
    assert host.file(RECORD).content_string.endswith(f"libcext-dev {OLD}\nlibcext0 {OLD}\n")


# -- refusals that leave the node as it was ----------------------------------


def test_a_wrong_fingerprint_is_refused_before_anything_is_written(host):
    before = apt_files(host)
    result = sources(host, name="bookworm-backports-2", fingerprints=[BULLSEYE_FPR])
    assert result["msg"].startswith(f"fingerprints: the key does not match: it holds {BOOKWORM_FPR} (Debian Archive "
                                    "Automatic Signing Key (12/bookworm) <ftpmaster@debian.org>)"), result
    assert apt_files(host) == before


def test_a_key_that_does_not_sign_the_archive_puts_the_source_back(host):
    before = apt_files(host)
    result = sources(host, key_url=f"file://{BULLSEYE_KEY}", fingerprints=[BULLSEYE_FPR],
                     pin="release n=bookworm-backports", pin_priority=600)
    assert result["msg"].startswith(f"package source bookworm-backports: apt-get update of {SOURCE} failed for "), result
    # The source had lists already: apt keeps them and says "An error occurred during the signature verification".
    assert "NO_PUBKEY 6ED0E7B82643E131" in result["msg"], result["msg"]
    assert result["msg"].endswith(f"(the key given does not verify this repository's signature). The node's sources "
                                  f"were left as they were (put back: {KEYRING})")
    assert apt_files(host) == before
    assert policy(host, "libcext0")[1] == {NEW: 600, OLD: 1001}


def test_an_unsigned_repository_is_refused(host):
    before = apt_files(host)
    result = sources(host, name="unsigned", url="file:/srv/unsigned", suites=["/"], components=[])
    assert result["msg"] == (
        "package source unsigned: apt-get update of /etc/apt/sources.list.d/unsigned.sources failed for "
        "file:/srv/unsigned: E: The repository 'file:/srv/unsigned  Release' is not signed. (apt refuses a repository "
        "it cannot verify with the key given (unsigned, or signed by another key)). The node's sources were left as "
        "they were (put back: /etc/apt/sources.list.d/unsigned.sources, /etc/apt/keyrings/unsigned.gpg)"), result
    assert apt_files(host) == before


def test_a_version_the_archive_lacks_is_refused_with_the_versions_it_has(host):
    before = (apt_files(host), packages(host))
    result = lock(host, {"libcext0": "9.9-1", "libcext-dev": OLD})
    assert result["msg"].startswith("packages: libcext0 9.9-1 is not in the configured sources; they have "
                                    f"{NEW} (http"), result
    assert f"bookworm-backports/main), {OLD} (http" in result["msg"] and result["msg"].endswith(". Nothing was changed")
    assert (apt_files(host), packages(host)) == before


def test_check_mode_predicts_the_move_to_backports_and_changes_nothing(host):
    before = (apt_files(host), packages(host))
    result = lock(host, {"libcext0": NEW, "libcext-dev": NEW}, check=True)
    assert result["changed"] and result["transaction"]["install"] == {"libcext-dev": [OLD, NEW], "libcext0": [OLD, NEW]}
    assert result["plan"][:3] == ["apt-mark unhold libcext-dev libcext0",
                                  f"apt-get install libcext-dev={NEW} libcext0={NEW}", "apt-mark hold libcext-dev libcext0"]
    assert (apt_files(host), packages(host)) == before


def test_check_mode_after_a_source_added_in_the_same_run(host):
    # A role's check run: package_source predicted a new source and wrote nothing, so apt lacks its packages.
    before = (apt_files(host), packages(host))
    result = lock(host, {"jq": "9.9-1"}, check=True, name="pending", sources_changed=True)
    assert result["changed"] and result["locked"] == {"jq": "9.9-1"}, result
    assert (apt_files(host), packages(host)) == before


# -- a version change in one run -------------------------------------------------


def test_the_move_to_backports_unholds_upgrades_and_holds_in_one_run(host):
    result = lock(host, {"libcext0": NEW, "libcext-dev": NEW})
    assert result["changed"] and result["locked"] == {"libcext-dev": NEW, "libcext0": NEW}, result
    assert packages(host).splitlines() == [f"libcext-dev hi {NEW}", f"libcext0 hi {NEW}"]
    assert host.check_output("apt-mark showhold").split() == ["libcext-dev", "libcext0"]
    assert policy(host, "libcext0") == (NEW, {NEW: 1001, OLD: 500})
    assert f"Pin: version {NEW}\n" in host.file(PIN).content_string and OLD not in host.file(PIN).content_string
    assert host.file(RECORD).content_string.endswith(f"libcext-dev {NEW}\nlibcext0 {NEW}\n")


def test_a_second_run_changes_nothing(host):
    result = lock(host, {"libcext0": NEW, "libcext-dev": NEW})
    assert not result["changed"] and result["plan"] == [], result


def test_held_broken_packages_name_the_set_that_holds_them(host):
    before = (apt_files(host), packages(host))
    result = lock(host, {"libcext-dev": OLD}, name="dev_only")
    assert result["msg"] == ("packages: libcext-dev is locked by the set test_lock; a package belongs to one set: "
                             "take it out of that set first"), result
    # A package of another set that the change needs: apt's "held broken packages", named.
    assert lock(host, {"libcext0": NEW})["released"] == ["libcext-dev"]
    result = lock(host, {"libcext-dev": OLD}, name="dev_only")
    assert result["msg"] == (f"packages: apt cannot install the set together: libcext-dev : Depends: libcext0 (= {OLD}) "
                             f"but {NEW} is to be installed; held outside this set: libcext0 (held by the set "
                             "test_lock). Nothing was changed"), result
    assert packages(host).splitlines() == [f"libcext-dev ii {NEW}", f"libcext0 hi {NEW}"]
    assert lock(host, {"libcext0": NEW, "libcext-dev": NEW})["changed"]
    assert (apt_files(host), packages(host)) == before


def test_absent_unlocks_and_removes_the_set(host):
    result = module(host, "package_set", name="test_lock", state="absent")
    assert result["changed"] and result["locked"] == {}, result
    assert not host.package("libcext0").is_installed and not host.package("libcext-dev").is_installed
    assert host.check_output("apt-mark showhold") == ""
    assert not host.file(PIN).exists and not host.file(BLACKLIST).exists and not host.file(RECORD).exists
    assert not host.package("python3-apt").is_installed
