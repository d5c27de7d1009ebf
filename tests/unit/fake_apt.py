"""A Debian node's apt-get, apt-cache, apt-mark and dpkg-query, as far as package_source and
package_set use them, printing what apt 2.6 printed in a Debian 12 node container (C locale).

The outputs were captured with `docker run dlnode/node:debian12-bare` against Debian's archive
(bookworm and bookworm-backports; libcext0 and libcext-dev, whose -dev package depends on the
library at the same exact version, as NVIDIA's driver packages do on their libraries).
"""
from __future__ import annotations

import re

from ansible.module_utils import basic

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files

APT_TOOLS = frozenset({"apt-get", "apt-mark", "apt-cache", "dpkg-query"})

HEAD = "Reading package lists...\nBuilding dependency tree...\nReading state information...\n"
BOOKWORM = ("http://deb.debian.org/debian bookworm/main amd64 Packages", "Debian:12.15/oldstable [amd64]")
BACKPORTS = ("http://deb.debian.org/debian bookworm-backports/main amd64 Packages",
             "Debian Backports:oldstable-backports [amd64]")
OLD, NEW = "7.2.3+ds-1", "7.3.2+ds-1~bpo12+1"


def libcext_repository():
    """{package: [(version, (where, label), {dependency: exact version})]}, oldest version first."""
    return {
        "libcext0": [(OLD, BOOKWORM, {}), (NEW, BACKPORTS, {})],
        "libcext-dev": [(OLD, BOOKWORM, {"libcext0": OLD}), (NEW, BACKPORTS, {"libcext0": NEW})],
        "jq": [("1.6-2.1+deb12u2", BOOKWORM, {})],
    }


# What `apt-get update` of one source printed: (rc, stdout, stderr).
UPDATES = {
    "ok": (0, "Get:1 http://deb.debian.org/debian bookworm-backports InRelease [59.4 kB]\n"
              "Get:2 http://deb.debian.org/debian bookworm-backports/main amd64 Packages [300 kB]\n"
              "Fetched 612 kB in 0s (5358 kB/s)\nReading package lists...\n", ""),
    "no_pubkey": (100, "Get:1 http://deb.debian.org/debian bookworm-backports InRelease [59.4 kB]\n"
                       "Err:1 http://deb.debian.org/debian bookworm-backports InRelease\n"
                       "  The following signatures couldn't be verified because the public key is not available: "
                       "NO_PUBKEY 6ED0E7B82643E131 NO_PUBKEY 78DBA3BC47EF2265\nReading package lists...\n",
                  "W: GPG error: http://deb.debian.org/debian bookworm-backports InRelease: The following signatures "
                  "couldn't be verified because the public key is not available: NO_PUBKEY 6ED0E7B82643E131 "
                  "NO_PUBKEY 78DBA3BC47EF2265\n"
                  "E: The repository 'http://deb.debian.org/debian bookworm-backports InRelease' is not signed.\n"),
    "unsigned": (100, "Get:1 file:/srv/unsigned  InRelease\nIgn:1 file:/srv/unsigned  InRelease\n"
                      "Get:2 file:/srv/unsigned  Release [816 B]\nGet:2 file:/srv/unsigned  Release [816 B]\n"
                      "Get:3 file:/srv/unsigned  Release.gpg\nIgn:3 file:/srv/unsigned  Release.gpg\n"
                      "Reading package lists...\n",
                 "E: The repository 'file:/srv/unsigned  Release' is not signed.\n"),
    "unreachable": (100, "Ign:1 http://no-such-host.invalid/debian  InRelease\n"
                         "Err:1 http://no-such-host.invalid/debian  InRelease\n"
                         "  Could not resolve 'no-such-host.invalid'\nReading package lists...\n",
                    "E: Failed to fetch http://no-such-host.invalid/debian/InRelease  Could not resolve "
                    "'no-such-host.invalid'\n"
                    "E: Some index files failed to download. They have been ignored, or old ones used instead.\n"),
    # apt older than 2.1.16 ignores APT::Update::Error-Mode: a fetch that failed is only a warning.
    "unreachable_old_apt": (0, "Err:1 http://127.0.0.1:9/debian  InRelease\n  Could not connect to 127.0.0.1:9 "
                               "(127.0.0.1). - connect (111: Connection refused)\nReading package lists...\n",
                            "W: Failed to fetch http://127.0.0.1:9/debian/InRelease  Could not connect to "
                            "127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)\n"
                            "W: Some index files failed to download. They have been ignored, or old ones used "
                            "instead.\n"),
}


class FakeApt:
    """Packages installed and held, a repository, and every command run, in order."""

    def __init__(self, repository=None):
        self.repository = repository if repository is not None else libcext_repository()
        self.installed = {}
        self.held = set()
        self.commands = []
        self.update = "ok"
        self.fail_install = None  # stderr of an install that dpkg fails half-way
        self.on_update = None  # called at apt-get update, to look at the files then

    def patch(self, monkeypatch, root, tools=APT_TOOLS):
        """Make modules see `root` as / and these tools, run by this fake."""
        monkeypatch.setattr(files, "ROOT", str(root))
        monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                            lambda _module, name, required=False, opt_dirs=None: f"/usr/bin/{name}" if name in tools else None)
        monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda _module, argv, **kwargs: self(argv))
        return self

    # -- dispatch --------------------------------------------------------------

    def __call__(self, argv):
        name, args = argv[0].rsplit("/", 1)[-1], [str(arg) for arg in argv[1:]]
        self.commands.append([name, *args])
        handler = {"dpkg-query": self.dpkg_query, "apt-mark": self.apt_mark, "apt-cache": self.apt_cache,
                   "apt-get": self.apt_get}[name]
        return handler(args)

    def versions(self, name):
        return [entry[0] for entry in self.repository.get(name, [])]

    def entry(self, name, version):
        return next(entry for entry in self.repository[name] if entry[0] == version)

    # -- tools -----------------------------------------------------------------

    def dpkg_query(self, args):
        names = args[args.index("--") + 1:]
        out, err = "", ""
        for name in sorted(names):
            if name in self.installed or name in self.held:
                status = ("h" if name in self.held else "i") + ("i" if name in self.installed else "n")
                out += f"{name}\t{status} \t{self.installed.get(name, '')}\n"
            else:
                err += f"dpkg-query: no packages found matching {name}\n"
        return (1 if err else 0), out, err

    def apt_mark(self, args):
        if args[0] == "showhold":
            return 0, "".join(f"{name}\n" for name in sorted(self.held)), ""
        out = ""
        for name in args[1:]:
            if args[0] == "hold":
                out += f"{name} was already set on hold.\n" if name in self.held else f"{name} set on hold.\n"
                self.held.add(name)
            else:
                out += f"Canceled hold on {name}.\n" if name in self.held else f"{name} was already not on hold.\n"
                self.held.discard(name)
        return 0, out, ""

    def apt_cache(self, args):
        assert args[0] == "madison"
        out = ""
        for name in args[1:]:
            for version, (where, _label), _deps in reversed(self.repository.get(name, [])):
                out += f"{name:>10} | {version} | {where}\n"
        return 0, out, ""

    def apt_get(self, args):
        if args[0] == "update":
            if self.on_update:
                self.on_update()
            return UPDATES[self.update]
        simulate = "--simulate" in args
        if args[0] == "remove":
            return self.remove([arg for arg in args[1:] if not arg.startswith("-")], simulate, args)
        specs = dict(arg.split("=", 1) for arg in args if re.match(r"^[a-z0-9][a-z0-9+.-]+=", arg))
        return self.install(specs, simulate, args)

    def install(self, specs, simulate, args):
        errors, out = [], HEAD
        for name, version in specs.items():
            if name not in self.repository:
                errors.append(f"E: Unable to locate package {name}")
            elif version not in self.versions(name):
                out += (f"Package {name} is not available, but is referred to by another package.\nThis may mean "
                        "that the package is missing, has been obsoleted, or\nis only available from another source\n\n")
                errors.append(f"E: Version '{version}' for '{name}' was not found")
        if errors:
            return 100, out, "".join(f"{line}\n" for line in errors)
        targets, unmet = dict(specs), []
        for name, version in specs.items():
            for dep, exact in self.entry(name, version)[2].items():
                have = targets.get(dep, self.installed.get(dep))
                if have == exact:
                    continue
                if dep in targets or dep in self.held:
                    unmet.append(f" {name} : Depends: {dep} ({'= ' + exact}) but {have} is to be installed")
                else:
                    targets[dep] = exact
        if unmet:
            out += ("Some packages could not be installed. This may mean that you have\nrequested an impossible "
                    "situation or if you are using the unstable\ndistribution that some required packages have not "
                    "yet been created\nor been moved out of Incoming.\nThe following information may help to resolve "
                    "the situation:\n\nThe following packages have unmet dependencies:\n" + "\n".join(unmet) + "\n")
            return 100, out, "E: Unable to correct problems, you have held broken packages.\n"
        changes = {name: version for name, version in targets.items() if self.installed.get(name) != version}
        for name in targets:
            if name not in changes:
                out += f"{name} is already the newest version ({targets[name]}).\n"
        held = sorted(name for name in changes if name in self.held)
        down = sorted(name for name in changes if name in self.installed
                      and self.versions(name).index(changes[name]) < self.versions(name).index(self.installed[name]))
        if held:
            out += "The following held packages will be changed:\n  " + " ".join(held) + "\n"
        if down:
            out += "The following packages will be DOWNGRADED:\n  " + " ".join(down) + "\n"
        if simulate:
            for name, version in changes.items():
                old = f"[{self.installed[name]}] " if name in self.installed else ""
                out += f"Inst {name} {old}({version} {self.entry(name, version)[1][1]})\n"
            for name, version in changes.items():
                out += f"Conf {name} ({version} {self.entry(name, version)[1][1]})\n"
            return 0, out, ""
        if held and "--allow-change-held-packages" not in args:
            return 100, out, "E: Held packages were changed and -y was used without --allow-change-held-packages.\n"
        if down and "--allow-downgrades" not in args:
            return 100, out, "E: Packages were downgraded and -y was used without --allow-downgrades.\n"
        if self.fail_install:
            return 100, out, self.fail_install
        self.installed.update(changes)
        return 0, out + "".join(f"Setting up {name} ({version}) ...\n" for name, version in changes.items()), ""

    def remove(self, names, simulate, args):
        gone = [name for name in names if name in self.installed]
        gone += [name for name, version in self.installed.items() if name not in gone
                 and set(self.entry(name, version)[2]) & set(gone)]
        out = HEAD + "The following packages will be REMOVED:\n  " + " ".join(sorted(gone)) + "\n"
        held = sorted(name for name in gone if name in self.held)
        if held:
            out += "The following held packages will be changed:\n  " + " ".join(held) + "\n"
        if simulate:
            return 0, out + "".join(f"Remv {name} [{self.installed[name]}]\n" for name in sorted(gone)), ""
        if held and "--allow-change-held-packages" not in args:
            return 100, out, "E: Held packages were changed and -y was used without --allow-change-held-packages.\n"
        for name in gone:
            del self.installed[name]
        return 0, out, ""
