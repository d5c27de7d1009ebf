#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
from __future__ import annotations

DOCUMENTATION = r"""
---
module: cluster_firewall
short_description: Open the cluster network of multi-node training in firewalld or ufw, in one call
version_added: 0.1.0
description:
  - Multi-node training needs the nodes to reach each other, through the rendezvous of C(torchrun)
    (29500/tcp by default), NCCL's sockets (ephemeral ports unless constrained) and the
    scheduler's daemons. A host firewall that is on blocks them. This module applies a whole
    declaration of trusted networks and open ports at once, and owns exactly what it creates.
  - With B(firewalld), the networks become the sources of the zone O(zone), created if missing, with
    target C(ACCEPT) (everything from them is accepted, as in firewalld's own C(trusted) zone); the
    ports go into the policy O(policy) from every zone to the host (C(ANY) to C(HOST)), which opens
    them to every source. Both are written to the permanent configuration and to the running
    firewall. The zone's sources and the policy's ports are exactly the declared ones; sources and
    ports that are not declared are removed. A new zone or policy, or a changed zone target,
    reaches the running firewall by C(firewall-cmd --reload).
  - firewalld binds a source to one zone only. A declared network that is already a source of
    another zone is refused, naming that zone and the command that frees it; nothing is changed.
  - With B(ufw), each network gets a rule C(allow from NETWORK), each port a rule C(allow PORT/PROTO),
    marked with the comment O(comment). Rules with that comment that are not declared are
    deleted; every other rule is the operator's and is left alone (one of them that already allows
    a declared network or port counts as allowing it). Rules can be added while ufw is inactive;
    they take effect when it is enabled. The module never enables or disables a firewall.
  - With B(auto), firewalld when it is running, else ufw when it is active, else nothing, with the reason
    in RV(reason).
options:
  networks:
    description:
      - Networks whose traffic is trusted, in CIDR form (V(10.10.0.0/16), V(fd00:10::/64)); a bare
        address is one host. Host bits must be clear; V(0.0.0.0/0) and V(::/0) are refused.
      - This is the choice that works for NCCL, whose sockets use ephemeral ports.
    type: list
    elements: str
    default: []
  ports:
    description:
      - Ports opened to every source, as V(N/tcp), V(N/udp) or a range V(N-M/tcp), ports 1 to 65535.
      - For when trusting whole networks is not wanted, such as V(29500/tcp) for the rendezvous
        of C(torchrun) or V(6817-6818/tcp) for Slurm's daemons.
    type: list
    elements: str
    default: []
  backend:
    description:
      - V(auto) picks firewalld when it is running, else ufw when it is active, else does nothing.
      - V(firewalld) fails unless firewalld is running. V(ufw) manages the rules even while ufw is inactive.
    type: str
    choices: [auto, firewalld, ufw]
    default: auto
  zone:
    description:
      - firewalld only. The zone that holds the networks. It belongs to this module; 1 to 17 letters,
        digits, V(_) or V(-).
    type: str
    default: dlnode-cluster
  policy:
    description:
      - firewalld only. The policy that holds the ports. It belongs to this module; 1 to 18 letters,
        digits, V(_) or V(-), not the name of O(zone).
    type: str
    default: dlnode-ports
  comment:
    description:
      - ufw only. The comment that marks the rules this module owns.
    type: str
    default: dlnode-cluster
attributes:
  check_mode:
    support: full
    description: Reads the firewall and returns the exact commands a real run would run, in RV(commands).
  diff_mode:
    support: full
    description: Shows the trusted networks and open ports before and after.
  platform:
    support: full
    platforms: posix
    description: Linux with firewalld (C(firewall-cmd)) or ufw; needs root.
notes:
  - firewalld policies need firewalld 0.9 or later (RHEL 8.4 and later, RHEL 9, Debian 12, Ubuntu 22.04).
  - A reload also applies permanent changes that others made and had not reloaded yet, and drops
    their runtime-only changes; it happens only when the zone or the policy is created or the
    zone's target is changed.
  - All commands run with argument lists in the C locale.
author: "dlnode.gpu developers (@dlnode)"
seealso:
  - name: firewalld zones and policies
    description: firewalld's documentation of zones, sources and policies.
    link: https://firewalld.org/documentation/
"""

EXAMPLES = r"""
- name: Trust the training network (NCCL, torchrun, Slurm all work)
  dlnode.gpu.cluster_firewall:
    networks: [10.10.0.0/16, "fd00:10::/64"]

- name: Open only the rendezvous and Slurm's ports, to every source
  dlnode.gpu.cluster_firewall:
    ports: [29500/tcp, 6817-6818/tcp, 60001-63000/tcp]

- name: Manage ufw's rules even while ufw is inactive
  dlnode.gpu.cluster_firewall:
    backend: ufw
    networks: [192.168.50.0/24]

- name: Remove what the module opened
  dlnode.gpu.cluster_firewall:
    backend: firewalld
    networks: []
    ports: []
"""

RETURN = r"""
backend:
  description: The firewall managed, or V(none) when O(backend=auto) found no firewall on.
  returned: always
  type: str
  sample: firewalld
active:
  description: Whether the firewall is on (firewalld running, ufw active). Rules added to an inactive ufw wait for C(ufw enable).
  returned: always
  type: bool
  sample: true
reason:
  description: Why nothing was done, when RV(backend) is V(none); empty otherwise.
  returned: always
  type: str
  sample: "firewalld is not running (firewall-cmd is not installed) and ufw is not active (ufw is not installed): no host firewall blocks the cluster network"
networks:
  description: The declared networks, normalized and sorted.
  returned: always
  type: list
  elements: str
  sample: [10.10.0.0/16, "fd00:10::/64"]
ports:
  description: The declared ports, normalized (V(N/proto), V(N-M/proto)) and sorted.
  returned: always
  type: list
  elements: str
  sample: [29500/tcp, 60001-63000/tcp]
commands:
  description: The commands run, or in check mode the commands a real run would run, in order.
  returned: always
  type: list
  elements: list
  sample:
    - [firewall-cmd, --permanent, --new-zone=dlnode-cluster]
    - [firewall-cmd, --permanent, --zone=dlnode-cluster, --set-target=ACCEPT]
    - [firewall-cmd, --permanent, --zone=dlnode-cluster, --add-source=10.10.0.0/16]
    - [firewall-cmd, --reload]
before:
  description:
    - The networks trusted and the ports opened by what the module owns, before the run.
    - firewalld, per configuration (C(permanent), C(runtime)); ufw, from the rules.
  returned: always
  type: dict
  sample: {permanent: {networks: [], ports: []}, runtime: {networks: [], ports: []}}
after:
  description: The same, read back after the run (predicted in check mode).
  returned: always
  type: dict
  sample: {permanent: {networks: [10.10.0.0/16], ports: []}, runtime: {networks: [10.10.0.0/16], ports: []}}
"""

from ansible_collections.dlnode.gpu.plugins.module_utils.common.commands import CommandError, Commands
from ansible_collections.dlnode.gpu.plugins.module_utils.common.module import run_module
from ansible_collections.dlnode.gpu.plugins.module_utils.common.plans import Plan, Step
from ansible_collections.dlnode.gpu.plugins.module_utils.network import firewall as fw

ARGUMENT_SPEC = dict(
    networks=dict(type="list", elements="str", default=[]),
    ports=dict(type="list", elements="str", default=[]),
    backend=dict(type="str", choices=["auto", "firewalld", "ufw"], default="auto"),
    zone=dict(type="str", default="dlnode-cluster"),
    policy=dict(type="str", default="dlnode-ports"),
    comment=dict(type="str", default="dlnode-cluster"),
)
PACKAGES = {"firewall-cmd": "firewalld", "ufw": "ufw"}


def firewalld_state(commands):
    """(running, why not) from firewall-cmd --state."""
    if not commands.path("firewall-cmd"):
        return False, "firewall-cmd is not installed"
    rc, out, err = commands.result("firewall-cmd", "--state")
    return rc == 0 and out.strip() == "running", (out or err).strip()


def ufw_state(commands):
    """(active, why not) from the first line of ufw status."""
    if not commands.path("ufw"):
        return False, "ufw is not installed"
    status = commands.run("ufw", "status").strip()
    return status.startswith("Status: active"), status.splitlines()[0] if status else "no status"


def pick_backend(choice, commands):
    """(backend or None, active, reason) for O(backend)."""
    if choice in ("auto", "firewalld"):
        running, why = firewalld_state(commands)
        if running:
            return "firewalld", True, ""
        if choice == "firewalld":
            raise fw.FirewallError(f"backend=firewalld: firewalld is not running ({why}): start it, "
                                   "or use backend=auto to open the firewall that is on")
    active, why_ufw = ufw_state(commands)
    if choice == "ufw" or active:
        return "ufw", active, ""
    return None, False, (f"firewalld is not running ({why}) and ufw is not active ({why_ufw}): "
                         "no host firewall blocks the cluster network")


def read_firewalld(commands, ports):
    state = {}
    for scope, prefix in (("permanent", ["--permanent"]), ("runtime", [])):
        zones = fw.parse_listing(commands.run("firewall-cmd", *prefix, "--list-all-zones"))
        rc, out, err = commands.result("firewall-cmd", *prefix, "--list-all-policies")
        if rc != 0 and ports:
            raise fw.FirewallError(f"ports: this firewalld has no policies (firewall-cmd --list-all-policies: "
                                   f"{(err or out).strip()}); they need firewalld 0.9 or later: list networks instead")
        state[scope] = {"zones": zones, "policies": fw.parse_listing(out) if rc == 0 else {}}
    return state


class Firewalld:
    binary = "firewall-cmd"

    def __init__(self, commands, params, networks, ports):
        self.commands, self.networks, self.ports = commands, networks, ports
        self.zone, self.policy = params["zone"], params["policy"]

    def read(self):
        return read_firewalld(self.commands, self.ports)

    def plan(self, state):
        return fw.plan_firewalld(state, self.zone, self.policy, self.networks, self.ports)

    def view(self, state):
        return fw.firewalld_view(state, self.zone, self.policy)

    def predicted(self):
        wanted = {"networks": self.networks, "ports": self.ports}
        return {"permanent": dict(wanted), "runtime": dict(wanted)}


class Ufw:
    binary = "ufw"

    def __init__(self, commands, params, networks, ports):
        self.commands, self.networks, self.ports = commands, networks, ports
        self.comment = params["comment"]

    def read(self):
        return fw.parse_ufw_added(self.commands.run("ufw", "show", "added"))

    def plan(self, state):
        return fw.plan_ufw(state, self.comment, self.networks, self.ports)

    def view(self, state):
        return fw.ufw_view(state, self.comment, self.networks, self.ports)

    def predicted(self):
        return {"networks": self.networks, "ports": self.ports}


BACKENDS = {"firewalld": Firewalld, "ufw": Ufw}


def steps_of(commands, binary, argvs):
    """The planned commands as a plan, each step running one."""
    return Plan(Step(binary, " ".join(argv), text=" ".join([binary, *argv]),
                     call=lambda argv=argv: commands.run(binary, *argv)) for argv in argvs)


def run(module, result):
    """Plan from the firewall's state, apply the difference, read it back."""
    params = module.params
    networks = fw.parse_networks(params["networks"])
    ports = fw.parse_ports(params["ports"])
    fw.check_names(params["zone"], params["policy"], params["comment"])
    result.update(networks=networks, ports=ports, diff=dict(before={}, after={}))

    commands = Commands(module, PACKAGES)
    name, active, reason = pick_backend(params["backend"], commands)
    result.update(backend=name or "none", active=active, reason=reason)
    if name is None:
        return
    backend = BACKENDS[name](commands, params, networks, ports)
    state = backend.read()
    argvs = backend.plan(state)
    plan = steps_of(commands, backend.binary, argvs)
    result.update(changed=plan.changed, commands=[[backend.binary, *argv] for argv in argvs], before=backend.view(state))
    if module.check_mode or not plan.changed:
        result["after"] = backend.predicted() if plan.changed else result["before"]
        result["diff"] = dict(before=result["before"], after=result["after"])
        return
    try:
        plan.apply(module)
    except CommandError as exc:
        done = sum(step.applied for step in plan)
        raise fw.FirewallError(f"{exc} ({done} of the {len(plan)} planned commands had run; "
                               "a new run plans again from what is there)") from exc
    state = backend.read()
    left = backend.plan(state)
    result["after"] = backend.view(state)
    result["diff"] = dict(before=result["before"], after=result["after"])
    if left:
        raise fw.FirewallError(f"{name} did not keep the change: after the run these commands are still needed: "
                               + "; ".join(" ".join([backend.binary, *step]) for step in left))


def main():
    run_module(ARGUMENT_SPEC, run, result=dict(backend="none", active=False, reason="", networks=[], ports=[],
                                               commands=[], before={}, after={}))


if __name__ == "__main__":
    main()
