# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Copyright: contributors to dlnode.gpu
"""Open the cluster network in the host firewall: validate the declaration, parse what
firewall-cmd and ufw print, and plan the commands that bring them to the declaration.

Pure functions: the module runs the commands. A plan step is an argument list without the
binary's name; firewalld steps are for firewall-cmd, ufw steps for ufw.
"""
from __future__ import annotations

import ipaddress
import re
import shlex

from ansible_collections.dlnode.gpu.plugins.module_utils.common.errors import DlnodeError

# A zone that accepts everything from its sources, like firewalld's own "trusted" zone.
ZONE_TARGET = "ACCEPT"
# A policy from every zone to the host itself: its ports are open to every source.
POLICY_INGRESS = "ANY"
POLICY_EGRESS = "HOST"
# firewalld builds chain names from these names, and netfilter limits chain names to 28 characters.
ZONE_NAME_MAX = 17
POLICY_NAME_MAX = 18
NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
COMMENT_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
PORT_RE = re.compile(r"^(\d+)(?:-(\d+))?/(tcp|udp)$")
# What firewall-cmd and ufw print: any protocol, ranges with '-' (firewalld) or ':' (ufw).
LISTED_PORT_RE = re.compile(r"^(\d+)(?:[-:](\d+))?/([a-z]+)$")


class FirewallError(DlnodeError):
    """Bad input or a refusal: the message names the option, what was found and what to do."""


# -- the declaration

def parse_networks(values):
    """Validated networks, normalized (str of ipaddress.ip_network) and sorted, IPv4 first."""
    networks = set()
    for index, value in enumerate(values):
        text = str(value).strip()
        try:
            network = ipaddress.ip_network(text)
        except ValueError as exc:
            try:
                network = ipaddress.ip_network(text, strict=False)
            except ValueError:
                raise FirewallError(
                    f"networks[{index}]: {value!r} is not an IPv4 or IPv6 network: write it in CIDR form, "
                    "such as 10.10.0.0/16 or fd00:10::/64 (a bare address is one host)") from exc
            host = text.split("/", 1)[0]
            raise FirewallError(
                f"networks[{index}]: {value!r} has host bits set: the network is {network}; write that, "
                f"or {host}/{network.max_prefixlen} for the single host") from exc
        if network.prefixlen == 0:
            raise FirewallError(
                f"networks[{index}]: {value!r} would trust every source, which is the firewall turned off: "
                "list the cluster's own networks (or stop the firewall on purpose)")
        networks.add(str(network))
    return sorted(networks, key=network_order)


def port_text(low, high, proto):
    return f"{low}/{proto}" if low == high else f"{low}-{high}/{proto}"


def parse_ports(values):
    """Validated ports as firewalld writes them (29500/tcp, 60000-61000/tcp), sorted."""
    ports = set()
    for index, value in enumerate(values):
        text = str(value).strip().lower()
        match = PORT_RE.match(text)
        if not match:
            raise FirewallError(
                f"ports[{index}]: {value!r} is not a port: write N/tcp, N/udp or a range N-M/tcp, "
                "such as 29500/tcp or 60000-61000/tcp")
        low, high, proto = int(match.group(1)), int(match.group(2) or match.group(1)), match.group(3)
        if not (1 <= low <= 65535 and 1 <= high <= 65535):
            raise FirewallError(f"ports[{index}]: {value!r}: ports are 1 to 65535")
        if low > high:
            raise FirewallError(f"ports[{index}]: {value!r}: the range starts after it ends; write {high}-{low}/{proto}")
        ports.add(port_text(low, high, proto))
    return sorted(ports, key=port_order)


def check_name(option, name, limit):
    """A zone or policy name that firewalld accepts."""
    if not (NAME_RE.match(name) and len(name) <= limit):
        raise FirewallError(f"{option}: {name!r} is not a firewalld {option} name: 1 to {limit} letters, digits, '_' or '-'")


def check_names(zone, policy, comment):
    check_name("zone", zone, ZONE_NAME_MAX)
    check_name("policy", policy, POLICY_NAME_MAX)
    if zone == policy:
        raise FirewallError(f"policy: {policy!r} is also the zone's name; firewalld keeps zones and policies "
                            "in one namespace: give the policy another name")
    if not COMMENT_RE.match(comment):
        raise FirewallError(f"comment: {comment!r} is not a rule marker: 1 to 64 letters, digits, '_', '-', '.' or ':'")


# -- keys to compare what a firewall lists with the declaration

def network_key(raw):
    """The normalized network of a listed source, or the raw text (an ipset, a MAC address)."""
    try:
        return str(ipaddress.ip_network(raw, strict=False))
    except ValueError:
        return raw


def port_key(raw):
    """A listed port (29500/tcp, 29500-29501/tcp, 29500:29501/tcp) as parse_ports writes it, or the raw text."""
    match = LISTED_PORT_RE.match(raw)
    if not match:
        return raw
    return port_text(int(match.group(1)), int(match.group(2) or match.group(1)), match.group(3))


def network_order(text):
    """Sort key: IPv4 before IPv6, by address then prefix; what is not a network last."""
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return (1, 0, 0, 0, text)
    return (0, network.version, int(network.network_address), network.prefixlen, "")


def port_order(text):
    """Sort key: by protocol, then first and last port; what is not a port last."""
    match = LISTED_PORT_RE.match(text)
    if not match:
        return (1, "", 0, 0, text)
    return (0, match.group(3), int(match.group(1)), int(match.group(2) or match.group(1)), "")


# -- firewalld

def parse_listing(text):
    """{name: {key: [words]}} from firewall-cmd --list-all-zones or --list-all-policies."""
    objects, current = {}, None
    for line in text.splitlines():
        if not line.strip() or line.startswith("\t"):
            continue  # blank lines part objects; rich rules go on tab-indented lines
        if not line[0].isspace():
            current = objects.setdefault(line.split()[0], {})  # "public (default, active)"
        elif current is not None and ":" in line:
            key, dummy, value = line.strip().partition(":")
            current[key] = value.split()
    return objects


def firewalld_conflicts(state, zone, networks):
    """[(network, raw source, other zone, scope)] for wanted networks another zone already holds."""
    conflicts = []
    for scope in ("permanent", "runtime"):
        for name, attrs in sorted(state[scope]["zones"].items()):
            for raw in attrs.get("sources", []):
                if name != zone and network_key(raw) in networks:
                    conflicts.append((network_key(raw), raw, name, scope))
    return conflicts


def conflict_message(conflicts, zone):
    network, raw, other, scope = conflicts[0]
    permanent = "--permanent " if scope == "permanent" else ""
    return (f"networks: {network} is already a source of the firewalld zone {other!r} ({scope} configuration), "
            f"and firewalld binds a source to one zone only. Nothing was changed. Remove it there "
            f"(firewall-cmd {permanent}--zone={other} --remove-source={raw}) to trust it through the zone {zone!r}, "
            f"or leave it out of networks and let the zone {other!r} decide its traffic")


def set_steps(prefix, option, listed, wanted, key):
    """Remove what is listed but not wanted (and duplicates), then add what is missing."""
    seen, remove = set(), []
    for raw in listed:
        if key(raw) not in wanted or key(raw) in seen:
            remove.append(raw)
        seen.add(key(raw))
    add = [item for item in wanted if item not in seen]
    steps = []
    if remove:
        steps.append(prefix + [f"--remove-{option}={raw}" for raw in remove])
    if add:
        steps.append(prefix + [f"--add-{option}={item}" for item in add])
    return steps


def scope_steps(objects, zone, policy, networks, ports, permanent):
    """Steps for one configuration (permanent or runtime) whose zone and policy exist where wanted."""
    scope = ["--permanent"] if permanent else []
    steps = []
    current = objects["zones"].get(zone)
    if networks or current is not None:
        if current is None:
            steps.append(scope + [f"--new-zone={zone}"])
            current = {}
        if networks and current.get("target") != [ZONE_TARGET]:
            steps.append(scope + [f"--zone={zone}", f"--set-target={ZONE_TARGET}"])
        steps += set_steps(scope + [f"--zone={zone}"], "source", current.get("sources", []), networks, network_key)
    current = objects["policies"].get(policy)
    if ports or current is not None:
        if current is None:
            steps.append(scope + [f"--new-policy={policy}"])
            current = {}
        prefix = scope + [f"--policy={policy}"]
        if ports:
            steps += set_steps(prefix, "ingress-zone", current.get("ingress-zones", []), [POLICY_INGRESS], str)
            steps += set_steps(prefix, "egress-zone", current.get("egress-zones", []), [POLICY_EGRESS], str)
        steps += set_steps(prefix, "port", current.get("ports", []), ports, port_key)
    return steps


def needs_reload(runtime, zone, policy, networks, ports):
    """A new zone or policy, and a zone's target, reach the running firewall only by a reload."""
    current = runtime["zones"].get(zone)
    if networks and (current is None or current.get("target") != [ZONE_TARGET]):
        return True
    return bool(ports) and policy not in runtime["policies"]


def plan_firewalld(state, zone, policy, networks, ports):
    """firewall-cmd steps: the permanent configuration first, then the running firewall.

    state: {"permanent": {"zones": ..., "policies": ...}, "runtime": {...}} from parse_listing.
    The zone holds the networks as sources (target ACCEPT); the policy (every zone to the host)
    holds the ports. Both belong wholly to this module.
    """
    conflicts = firewalld_conflicts(state, zone, networks)
    if conflicts:
        raise FirewallError(conflict_message(conflicts, zone))
    steps = scope_steps(state["permanent"], zone, policy, networks, ports, permanent=True)
    if needs_reload(state["runtime"], zone, policy, networks, ports):
        return steps + [["--reload"]]
    return steps + scope_steps(state["runtime"], zone, policy, networks, ports, permanent=False)


def firewalld_view(state, zone, policy):
    """What the zone trusts and the policy opens, per configuration, for the diff."""
    view = {}
    for scope in ("permanent", "runtime"):
        zone_attrs = state[scope]["zones"].get(zone, {})
        policy_attrs = state[scope]["policies"].get(policy, {})
        view[scope] = {"networks": sorted({network_key(raw) for raw in zone_attrs.get("sources", [])}, key=network_order),
                       "ports": sorted({port_key(raw) for raw in policy_attrs.get("ports", [])}, key=port_order)}
    return view


# -- ufw

def parse_ufw_added(text):
    """The rules of `ufw show added`: {"tokens": the command after 'ufw', "spec": without the comment, "comment"}."""
    rules = []
    for line in text.splitlines():
        if not line.startswith("ufw "):
            continue
        try:
            tokens = shlex.split(line)[1:]
        except ValueError:
            continue  # an operator's comment shlex cannot read is not ours either
        spec, comment = tokens, None
        if len(tokens) >= 2 and tokens[-2] == "comment":
            spec, comment = tokens[:-2], tokens[-1]
        rules.append({"tokens": tokens, "spec": spec, "comment": comment})
    return rules


def ufw_key(spec):
    """("network", cidr) for `allow from CIDR`, ("port", "29500/tcp") for `allow PORT/PROTO`, else None."""
    if len(spec) == 3 and spec[:2] == ["allow", "from"]:
        try:
            return "network", str(ipaddress.ip_network(spec[2], strict=False))
        except ValueError:
            return None  # "any", or a form this module does not write
    if len(spec) == 2 and spec[0] == "allow" and LISTED_PORT_RE.match(spec[1]):
        return "port", port_key(spec[1])
    return None


def ufw_wanted(networks, ports):
    return [("network", network) for network in networks] + [("port", port) for port in ports]


def plan_ufw(rules, comment, networks, ports):
    """ufw steps: delete our rules (marked with comment) that are not declared, then add what no rule allows yet.

    A declared network or port that an operator's own rule already allows is left to that rule.
    """
    wanted = ufw_wanted(networks, ports)
    steps, seen = [], set()
    for rule in rules:
        if rule["comment"] != comment:
            continue
        key = ufw_key(rule["spec"])
        if key is None or key not in wanted or key in seen:
            steps.append(["delete"] + rule["tokens"])
        seen.add(key)
    present = {ufw_key(rule["spec"]) for rule in rules}
    for kind, value in wanted:
        if (kind, value) in present:
            continue
        target = ["from", value] if kind == "network" else [value.replace("-", ":")]
        steps.append(["allow"] + target + ["comment", comment])
    return steps


def ufw_view(rules, comment, networks, ports):
    """The networks and ports that our rules, or an operator's rule for a declared one, allow: for the diff."""
    wanted = ufw_wanted(networks, ports)
    keys = {ufw_key(rule["spec"]) for rule in rules if rule["comment"] == comment or ufw_key(rule["spec"]) in wanted}
    return {"networks": sorted((value for kind, value in keys - {None} if kind == "network"), key=network_order),
            "ports": sorted((value for kind, value in keys - {None} if kind == "port"), key=port_order)}
