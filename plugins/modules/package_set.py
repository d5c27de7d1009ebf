#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
from __future__ import annotations

DOCUMENTATION = r"""
module: package_set
short_description: Install a set of packages at exact versions and lock them (hold, pin, no unattended upgrade)
version_added: 0.1.0
description:
  - The collection's one way to lock packages at exact versions. The driver, CUDA, cuDNN, NCCL and
    container roles each call it once with their own set (O(name)); M(dlnode.gpu.packages) stays the way
    to install unpinned distribution packages. A package belongs to one set.
  - "Plans from the node alone: installed versions and holds from C(dpkg-query) (C(rpm) and
    C(dnf versionlock list) on dnf), and for what must change one C(apt-get install --simulate) of the whole
    set at once, which needs no python3-apt. A version the sources do not have, a package they do not know and
    a dependency apt cannot meet (C(held broken packages)) are refused there, naming the package, the version
    asked and the versions the sources have, before anything changes, in check mode too."
  - "Applies in one sequence, without a window: unhold what changes, install the whole set at its versions
    in one apt-get call, hold again, write the pin and exclusion files and the set's record, read the versions
    and holds back. A version or branch change is the same sequence. Packages the set no longer names are
    released (unheld, unpinned) and stay installed."
  - "apt: C(apt-mark hold); C(/etc/apt/preferences.d/dlnode-<name>.pref) pins each package at its version
    (priority O(pin_priority)); C(/etc/apt/apt.conf.d/52dlnode-<name>-unattended-upgrades) adds each package to
    C(Unattended-Upgrade::Package-Blacklist). dnf: C(dnf install name-version) and C(dnf versionlock), which
    needs C(python3-dnf-plugin-versionlock) (dnf 4); planned and unit-tested only, no EL archive was reachable."
  - "RV(locked) is the map to merge into the fact C(dlnode_versions), which the validate role checks:
    C(dlnode_versions: \"{{ dlnode_versions | default({}) | combine(result.locked) }}\")."
options:
  name:
    description: The set's owner (V(nvidia_driver), V(cuda_toolkit)); it names the set's files. Letters, digits, C(_) and C(-).
    type: str
    required: true
  packages:
    description:
      - "Package name: exact version, as apt or dnf prints it (quoted: V(\"535.261.03-1\"), V(\"1:2.3-1\");
        dnf C([epoch:]version-release)). Required with O(state=present)."
      - "Or a pattern with C(*) for any characters (V(\"580.*\"), V(\"2.28.3-*+cuda13.0\")): the installed version when it
        matches, else the newest version the sources have that matches (one C(apt-cache madison) of those
        packages). The set is then locked at that exact version, and a re-run keeps it: a newer matching
        version in the sources moves nothing until the pattern or version changes."
      - With O(state=absent), names to remove besides those the set's record holds; versions are ignored.
    type: dict
    default: {}
  state:
    description:
      - V(present) installs and locks the set. V(absent) unlocks and removes its packages, and refuses when
        that would remove other packages (those that depend on them).
    type: str
    choices: [present, absent]
    default: present
  hold:
    description: Hold the packages (C(apt-mark hold), C(dnf versionlock)); V(false) releases holds this set made.
    type: bool
    default: true
  pin:
    description: apt only. Pin each package at its version in the set's preferences file.
    type: bool
    default: true
  pin_priority:
    description: apt only. The pins' priority; above 1000 apt goes back to the version even from a newer one.
    type: int
    default: 1001
  unattended_upgrades_exclude:
    description: apt only. Add each package, by its exact name, to unattended-upgrades' Package-Blacklist.
    type: bool
    default: true
  install_recommends:
    description: Install the packages' recommended (apt) or weak (dnf) dependencies too.
    type: bool
    default: false
  sources_changed:
    description:
      - Whether a M(dlnode.gpu.package_source) task before this one changed a source (register it and pass
        C(is changed)). Used in check mode only, where that source was not written and apt's lists lack its
        packages; a package or version apt cannot find is then predicted to be installed, with a warning,
        instead of refused. A real run refuses it always.
    type: bool
    default: false
  record_dir:
    description: Where each set records the packages it locked.
    type: path
    default: /etc/dlnode/package-sets
extends_documentation_fragment:
  - dlnode.gpu.package_manager
attributes:
  check_mode:
    support: full
    description: Reads dpkg's database and simulates the install with apt-get (no python3-apt needed); changes nothing.
  diff_mode:
    support: full
    description: Shows the set's versions and holds, and its files, before and after.
  platform:
    support: full
    platforms: posix
    description: Debian and Ubuntu (apt); RHEL family (dnf), planned and unit-tested only.
seealso:
  - module: dlnode.gpu.package_source
  - module: dlnode.gpu.packages
author: "dlnode.gpu developers (@dlnode)"
"""

EXAMPLES = r"""
- name: Lock the driver stack at one version
  dlnode.gpu.package_set:
    name: nvidia_driver
    packages:
      nvidia-driver: "535.261.03-1~deb12u1"
      libnvidia-ml1: "535.261.03-1~deb12u1"
      nvidia-persistenced: "535.261.03-1~deb12u1"
  register: nvidia_driver_lock

- name: Record what is locked, for the validate role
  ansible.builtin.set_fact:
    dlnode_versions: "{{ dlnode_versions | default({}) | combine(nvidia_driver_lock.locked) }}"
"""

RETURN = r"""
manager:
  description: The package manager used.
  returned: always
  type: str
  sample: apt
locked:
  description: The set's packages at their versions (predicted in check mode); empty with O(state=absent).
  returned: always
  type: dict
  sample: {"nvidia-driver": "535.261.03-1~deb12u1", "libnvidia-ml1": "535.261.03-1~deb12u1"}
released:
  description: Packages the set locked before and no longer names; unheld and unpinned, left installed.
  returned: always
  type: list
  elements: str
  sample: []
before:
  description: Each package's installed version (null when not installed) and hold, before.
  returned: always
  type: dict
  sample: {"nvidia-driver": {"version": "535.216.01-1~deb12u1", "held": true}}
after:
  description: The same after, read back (predicted in check mode).
  returned: always
  type: dict
  sample: {"nvidia-driver": {"version": "535.261.03-1~deb12u1", "held": true}}
transaction:
  description: What apt's simulation said the install or removal does, dependencies included.
  returned: always
  type: dict
  sample: {"install": {"nvidia-driver": ["535.216.01-1~deb12u1", "535.261.03-1~deb12u1"]}, "remove": {}}
plan:
  description: What was (or in check mode would be) done, in order.
  returned: always
  type: list
  elements: str
  sample: ["apt-mark unhold nvidia-driver", "apt-get install nvidia-driver=535.261.03-1~deb12u1",
           "apt-mark hold nvidia-driver", "/etc/apt/preferences.d/dlnode-nvidia_driver.pref: write"]
"""

import re

from ansible_collections.dlnode.gpu.plugins.module_utils.common import files
from ansible_collections.dlnode.gpu.plugins.module_utils.common.commands import Commands
from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError
from ansible_collections.dlnode.gpu.plugins.module_utils.common.module import run_module
from ansible_collections.dlnode.gpu.plugins.module_utils.common.plans import Plan, Step
from ansible_collections.dlnode.gpu.plugins.module_utils.packages import apt, database, dnf, locks, versions
from ansible_collections.dlnode.gpu.plugins.module_utils.packages.filesets import FileSet

ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    packages=dict(type="dict", default={}),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    hold=dict(type="bool", default=True),
    pin=dict(type="bool", default=True),
    pin_priority=dict(type="int", default=1001),
    unattended_upgrades_exclude=dict(type="bool", default=True),
    install_recommends=dict(type="bool", default=False),
    sources_changed=dict(type="bool", default=False),
    manager=dict(type="str", choices=["auto", "apt", "dnf"], default="auto"),
    record_dir=dict(type="path", default="/etc/dlnode/package-sets"),
)
# apt reads a .d file only when its name has no extension but its own (.pref, .conf).
SET_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
TOOL_PACKAGES = {"apt-get": "apt", "apt-mark": "apt", "apt-cache": "apt", "dpkg-query": "dpkg", "rpm": "rpm",
                 "dnf": "dnf"}


def check_options(params, manager):
    name, packages = params["name"], params["packages"]
    if not SET_NAME_RE.match(name):
        raise DlnodeError(f"name: {name!r} must be letters, digits, '_' and '-' (it names the set's apt files)")
    if params["state"] == "present" and not packages:
        raise DlnodeError("packages: required with state=present, as {name: version}")
    name_re, version_re = (apt.PACKAGE_RE, apt.VERSION_RE) if manager == "apt" else (dnf.PACKAGE_RE, dnf.VERSION_RE)
    form = "[epoch:]version[-revision]" if manager == "apt" else "[epoch:]version-release"
    for package, version in packages.items():
        if not name_re.match(package):
            raise DlnodeError(f"packages: {package!r} is not a {manager} package name (no architecture, pattern or path)")
        if params["state"] == "absent":
            continue
        if not isinstance(version, str):
            raise DlnodeError(f"packages: the version of {package} must be a quoted string as {manager} prints it, "
                              f"got {type(version).__name__} {version!r} (YAML reads 1.10 as the number 1.1)")
        if not version_re.match(version) and not versions.PATTERN_RE.match(version):
            raise DlnodeError(f"packages: {package}: {version!r} is not an exact {manager} version ({form}, "
                              "no spaces) nor a pattern with '*' (580.*)")
    priority = params["pin_priority"]
    if manager == "apt" and params["pin"] and (priority == 0 or not -32768 <= priority <= 32767):
        raise DlnodeError(f"pin_priority: {params['pin_priority']} must be a non-zero number from -32768 to 32767 "
                          "(above 1000 to go back to the version from a newer one)")


def set_files(params, manager, owner, packages):
    """The set's record and, on apt, its pin and unattended-upgrades files; None where absent."""
    name = params["name"]
    fileset = FileSet()
    if manager == "apt":
        pin = apt.version_pins_text(owner, packages, params["pin_priority"]) if packages and params["pin"] else None
        fileset.add(f"{apt.PREFERENCES_DIR}/dlnode-{name}.pref", pin)
        blacklist = apt.blacklist_text(owner, packages) if packages and params["unattended_upgrades_exclude"] else None
        fileset.add(f"{apt.CONF_DIR}/52dlnode-{name}-unattended-upgrades", blacklist)
    fileset.add(locks.record_path(params["record_dir"], name), locks.record_text(owner, packages) if packages else None)
    return fileset


class Lock:
    """One set on one node: what it is, what it should be, and the commands between."""

    def __init__(self, module, manager):
        self.module = module
        self.params = module.params
        self.manager = manager
        self.commands = Commands(module, TOOL_PACKAGES, environ=apt.APT_ENV if manager == "apt" else None)
        self.owner = f"package_set {self.params['name']}"
        record = locks.parse_record(files.read(locks.record_path(self.params["record_dir"], self.params["name"])))
        self.owners = locks.owners(self.params["record_dir"], self.params["name"])
        self.present = self.params["state"] == "present"
        self.wanted = {name: database.strip_epoch(version) for name, version in self.params["packages"].items()} \
            if self.present else {}
        names = list(self.params["packages"]) if self.present else list(dict.fromkeys([*record, *self.params["packages"]]))
        self.members = names
        self.released = [name for name in record if name not in names] if self.present else []
        self.transaction = {"install": {}, "remove": {}}

    # -- reading ---------------------------------------------------------------

    def status(self, names):
        """{package: {version, held}} read from dpkg, or from rpm and dnf's versionlock list."""
        if self.manager == "apt":
            return database.read_status(self.commands, names)
        versions = database.read_installed(self.commands, "rpm", names)
        held = dnf.parse_versionlock(self.commands.run("dnf", *dnf.versionlock_args("list", []))) \
            if self.needs_versionlock() else {}
        return {name: {"version": versions.get(name), "held": name in held} for name in names}

    def needs_versionlock(self):
        if self.commands.path("dnf5"):
            return True  # versionlock is a dnf5 command of its own
        if database.read_installed(self.commands, "rpm", [dnf.VERSIONLOCK_PLUGIN]):
            return True
        if self.params["hold"]:
            raise DlnodeError(f"hold: dnf versionlock needs {dnf.VERSIONLOCK_PLUGIN}: install it (dlnode.gpu.packages) "
                              "or set hold: false")
        return False

    def available(self, names):
        """{package: [versions]} the sources have: one apt-cache madison (dnf repoquery) of these packages."""
        if self.manager == "apt":
            found = apt.parse_madison(self.commands.run("apt-cache", "madison", *sorted(names)))
            return {name: [version for version, _where in found.get(name, [])] for name in names}
        return dnf.parse_repoquery(self.commands.run("dnf", *dnf.repoquery_args(names)))

    def resolve(self, before):
        """Each pattern (580.*) replaced by the version it stands for; refused when the sources have none."""
        patterns = {name: version for name, version in self.wanted.items() if versions.is_pattern(version)}
        open_patterns = [name for name, pattern in patterns.items() if not versions.matches(before[name]["version"], pattern)]
        available = self.available(open_patterns) if open_patterns else {}
        missing = []
        for name, pattern in patterns.items():
            found = versions.resolve(pattern, before[name]["version"], available.get(name, []))
            if found:
                self.wanted[name] = database.strip_epoch(found)
            else:
                missing.append(name)
        if not missing:
            return
        if self.module.check_mode and self.params["sources_changed"]:
            self.module.warn(f"check mode: no version of {', '.join(missing)} in apt's lists matches "
                             f"{', '.join(sorted({patterns[name] for name in missing}))}: the source a task before this "
                             "one adds is not there in a check run, so the newest matching version is predicted")
            return
        raise DlnodeError("packages: " + "; ".join(
            f"no version of {name} matches {patterns[name]}; the sources have "
            + (", ".join(available.get(name, [])) or "no version of it") for name in missing) + ". Nothing was changed",
            before=before)

    # -- planning --------------------------------------------------------------

    def check_owners(self):
        taken = {name: self.owners[name] for name in self.members if name in self.owners}
        if taken:
            raise DlnodeError("packages: " + ", ".join(f"{name} is locked by the set {owner}" for name, owner in taken.items())
                              + "; a package belongs to one set: take it out of that set first")

    def simulate(self, before):
        """apt-get --simulate of the whole change; refused here, naming why, when apt would refuse it."""
        # Packages the set no longer names are unheld before the install (a renamed package, a branch's
        # pinning package that the next one conflicts with): simulate without holds, and refuse below
        # any other held package the change would touch.
        released_held = [name for name in self.released if before[name]["held"]]
        if self.present:
            args = apt.install_args(self.wanted, self.params["install_recommends"], simulate=True,
                                    ignore_hold=bool(released_held))
        else:
            args = apt.remove_args([name for name in self.members if before[name]["version"]], simulate=True)
        rc, out, err = self.commands.result("apt-get", *args)
        errors = apt.simulation_errors(out, err)
        if self.module.check_mode and self.params["sources_changed"] and (errors["versions"] or errors["packages"]) \
                and not errors["unmet"] and not errors["other"]:
            missing = [f"{name} {version}" for name, version in errors["versions"]] + errors["packages"]
            self.module.warn(f"check mode: apt's lists lack {', '.join(missing)}: the source a task before this one "
                             "adds is not there in a check run, so the install is predicted without apt's resolution")
            return
        if rc != 0 or any(errors.values()):
            if not any(errors.values()):
                errors["other"].append(f"apt-get {' '.join(args)} exited {rc}: {err.strip()}")
            refused = sorted({name for name, _version in errors["versions"]} | set(errors["packages"]))
            madison = apt.parse_madison(self.commands.run("apt-cache", "madison", *refused)) if refused else {}
            holds = self.commands.run("apt-mark", "showhold").split() if errors["unmet"] else []
            raise DlnodeError(f"packages: {locks.refusal(errors, madison, holds, self.owners, self.members)}. "
                              "Nothing was changed", before=before)
        found = apt.parse_simulation(out)
        self.transaction = {"install": found["install"], "remove": found["remove"]}
        held = found["held_changed"]
        if released_held:
            # apt named no hold it ignored: read them, and find those the change would touch.
            holds = set(self.commands.run("apt-mark", "showhold").split())
            held = [name for name in [*found["install"], *found["remove"]] if name in holds]
        outside = [name for name in held if name not in self.members + self.released]
        if outside:
            raise DlnodeError(f"packages: the change would also change held packages outside this set: "
                              f"{locks.held_by(outside, self.owners)}. Nothing was changed", before=before)
        removed = [name for name in found["remove"] if name not in self.members]
        if removed and not self.present:
            raise DlnodeError(f"state: removing the set would also remove {', '.join(removed)} (they depend on it): "
                              "remove or release them first. Nothing was changed", before=before)
        if removed:
            self.module.warn(f"package_set {self.params['name']}: apt removes {', '.join(removed)} to install the set")

    def plan(self, before):
        """The steps from before to the set locked (or gone), and the files they leave."""
        hold = self.params["hold"] and self.present
        changing = [name for name in self.members
                    if self.present and not locks.same_version(before[name]["version"], self.wanted[name])]
        removing = [name for name in self.members if not self.present and before[name]["version"]]
        unhold = sorted(name for name in self.members + self.released if before[name]["held"]
                        and (name in changing or name in removing or name in self.released or not hold))
        held_after = [name for name in self.members if before[name]["held"] and name not in unhold]
        plan = Plan()
        if unhold:
            plan.add(self.step("unhold", unhold))
        if changing:
            plan.add(self.step("install", changing))
        if removing:
            plan.add(self.step("remove", removing))
        to_hold = [name for name in self.members if hold and name not in held_after]
        if to_hold:
            plan.add(self.step("hold", to_hold))
        fileset = set_files(self.params, self.manager, self.owner, self.wanted)
        for change in fileset.changed:
            plan.add(Step("file", change.path, text=f"{change.path}: {'remove' if change.after is None else 'write'}",
                          call=lambda change=change: None))
        return plan, fileset, changing or removing, unhold

    def step(self, action, names):
        """One command over these names: apt-mark, one apt-get or dnf call, dnf versionlock."""
        names = sorted(names)
        specs = [f"{name}={version}" if self.manager == "apt" else dnf.spec(name, version)
                 for name, version in sorted(self.wanted.items())]
        recommends = self.params["install_recommends"]
        if self.manager == "apt":
            tool, args, shown = {
                "unhold": ("apt-mark", ["unhold", *names], ["unhold", *names]),
                "hold": ("apt-mark", ["hold", *names], ["hold", *names]),
                "install": ("apt-get", apt.install_args(self.wanted, recommends, simulate=False), ["install", *specs]),
                "remove": ("apt-get", apt.remove_args(names, simulate=False), ["remove", *sorted(names)]),
            }[action]
        else:
            locked = [dnf.spec(name, self.wanted[name]) for name in names if name in self.wanted]
            tool, args, shown = "dnf", {
                "unhold": dnf.versionlock_args("delete", names), "hold": dnf.versionlock_args("add", locked),
                "install": dnf.install_args(self.wanted, recommends), "remove": dnf.remove_args(names),
            }[action], None
        text = f"{tool} {' '.join(shown or [arg for arg in args if not arg.startswith('-')])}"
        return Step(action, " ".join(names), text=text, call=lambda: self.commands.run(tool, *args))

    # -- applying --------------------------------------------------------------

    def apply(self, plan, fileset, unhold):
        """Run the steps; when the install or removal fails, hold again what was unheld, and say so."""
        for step in plan.changes:
            if step.action == "file":
                continue
            try:
                step.run()
            except DlnodeError as err:
                if step.action not in ("install", "remove"):
                    raise
                if unhold:
                    self.commands.result(*(("apt-mark", "hold") if self.manager == "apt"
                                           else ("dnf", "versionlock", "add")), *unhold)
                now = self.status(self.members + self.released)
                installed = ", ".join(f"{name} {state['version'] or '(none)'}" for name, state in now.items())
                raise DlnodeError(f"package set {self.params['name']}: {err}"
                                  + (f"; the holds on {', '.join(unhold)} were put back" if unhold else "")
                                  + f"; installed now: {installed}", after=now) from err
        fileset.apply(self.module)

    def predict(self, before):
        after = {name: dict(state) for name, state in before.items()}
        for name in self.members:
            after[name] = ({"version": self.wanted[name], "held": self.params["hold"]} if self.present
                           else {"version": None, "held": False})
        for name in self.released:
            after[name]["held"] = False
            if name in self.transaction["remove"]:
                after[name]["version"] = None  # renamed: the new name conflicts with and replaces it
        return after


def run(module, result):
    params = module.params
    commands = Commands(module, TOOL_PACKAGES)
    manager = params["manager"] if params["manager"] != "auto" else database.detect(commands, ("apt", "dnf"))
    check_options(params, manager)
    lock = Lock(module, manager)
    lock.check_owners()
    names = lock.members + lock.released
    before = lock.status(names)
    result.update(manager=manager, before=before, released=lock.released)
    lock.resolve(before)
    plan, fileset, moving, unhold = lock.plan(before)
    if moving and manager == "apt":
        lock.simulate(before)
    predicted = lock.predict(before)
    result.update(changed=plan.changed, plan=plan.texts(), transaction=lock.transaction,
                  locked=dict(sorted(lock.wanted.items())), after=predicted,
                  diff=[{"before_header": f"package set {params['name']}", "after_header": f"package set {params['name']}",
                         "before": before, "after": predicted}] + fileset.diffs())
    if module.check_mode or not plan.changed:
        return
    lock.apply(plan, fileset, unhold)
    after = lock.status(names)
    result["after"] = after
    differ = {name: {"expected": predicted[name], "found": after[name]} for name in names
              if not locks.same_version(after[name]["version"], predicted[name]["version"])
              or after[name]["held"] != predicted[name]["held"]}
    if differ:
        raise DlnodeError(f"package set {params['name']}: read back after {', '.join(plan.texts())}, the node differs: "
                          f"{differ}")


def main():
    run_module(ARGUMENT_SPEC, run, result=dict(manager=None, locked={}, released=[], before={}, after={},
                                               transaction={"install": {}, "remove": {}}, plan=[]))


if __name__ == "__main__":
    main()
