"""Fake firewall-cmd and ufw for module tests: they keep state, answer in the format the real
tools print (tests/fixtures/firewall/, captured from firewalld 1.3.3 and ufw 0.36.2 on Debian 12)
and refuse what the real tools refuse. Every call is recorded as [name, *args].

Written independently of plugins/module_utils/network/firewall.py, so a parser bug there is not
mirrored here.
"""
from __future__ import annotations

import copy
import ipaddress
import shlex
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "firewall"
FIREWALLD = FIXTURES / "firewalld-1.3.3-debian12"
UFW = FIXTURES / "ufw-0.36.2-debian12"

ZONE_KEYS = ["target", "icmp-block-inversion", "interfaces", "sources", "services", "ports", "protocols", "forward",
             "masquerade", "forward-ports", "source-ports", "icmp-blocks", "rich rules"]
POLICY_KEYS = ["priority", "target", "ingress-zones", "egress-zones", "services", "ports", "protocols", "masquerade",
               "forward-ports", "source-ports", "icmp-blocks", "rich rules"]
NEW_ZONE = {"target": ["default"], "icmp-block-inversion": ["no"], "forward": ["no"], "masquerade": ["no"]}
NEW_POLICY = {"priority": ["-1"], "target": ["CONTINUE"], "masquerade": ["no"]}


def load_listing(text):
    """{name: {"suffix": "(active)", "attrs": {key: [words]}, "rich": [lines]}} of a firewall-cmd listing."""
    objects, current = {}, None
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("\t"):
            current["rich"].append(line)
        elif not line.startswith(" "):
            name, dummy, suffix = line.partition(" ")
            current = objects[name] = {"suffix": suffix, "attrs": {}, "rich": []}
        else:
            key, dummy, value = line.strip().partition(":")
            current["attrs"][key] = value.split()
    return objects


def render_listing(objects, keys):
    blocks = []
    for name in sorted(objects):
        obj = objects[name]
        lines = [f"{name} {obj['suffix']}".rstrip()]
        lines += [f"  {key}: {' '.join(obj['attrs'].get(key, []))}" for key in keys]
        blocks.append("\n".join(lines + obj["rich"]) + "\n")
    return "\n".join(blocks) + "\n"


class FakeFirewalld:
    """firewalld 1.3: a permanent and a runtime configuration of zones and policies."""

    def __init__(self, fixture=True, running=True):
        self.running = running
        self.ignore_writes = False
        empty = {"zones": {}, "policies": {}}
        self.permanent, self.runtime = copy.deepcopy(empty), copy.deepcopy(empty)
        if fixture:
            for scope, config in (("permanent", self.permanent), ("runtime", self.runtime)):
                config["zones"] = load_listing((FIREWALLD / f"{scope}-zones.txt").read_text())
                config["policies"] = load_listing((FIREWALLD / f"{scope}-policies.txt").read_text())

    # -- what tests read

    def attr(self, scope, kind, name, key):
        return getattr(self, scope)[kind][name]["attrs"].get(key, [])

    def add_zone(self, scope, name, **attrs):
        config = getattr(self, scope)
        config["zones"][name] = {"suffix": "", "attrs": dict(copy.deepcopy(NEW_ZONE), **attrs), "rich": []}

    # -- the command

    def __call__(self, args):
        if args == ["--state"]:
            return (0, "running\n", "") if self.running else (252, "not running\n", "")
        if not self.running:
            return 252, "FirewallD is not running\n", ""
        permanent = args[:1] == ["--permanent"]
        args = args[1:] if permanent else args
        config = self.permanent if permanent else self.runtime
        if args == ["--reload"]:
            if not permanent:
                self.runtime = copy.deepcopy(self.permanent)
            return 0, "success\n", ""
        if args == ["--list-all-zones"]:
            return 0, render_listing(config["zones"], ZONE_KEYS), ""
        if args == ["--list-all-policies"]:
            return 0, render_listing(config["policies"], POLICY_KEYS), ""
        if len(args) == 1 and args[0].startswith(("--new-zone=", "--new-policy=")):
            return self.create(config, permanent, args[0])
        return self.change(config, args)

    def create(self, config, permanent, arg):
        if not permanent:
            return 2, "", "firewall-cmd: error: Option can be used only with --permanent.\n"
        option, dummy, name = arg.partition("=")
        if name in config["zones"] or name in config["policies"]:
            return 26, "", f"Error: NAME_CONFLICT: {name}\n"
        kind, attrs = ("zones", NEW_ZONE) if option == "--new-zone" else ("policies", NEW_POLICY)
        if not self.ignore_writes:
            config[kind][name] = {"suffix": "", "attrs": copy.deepcopy(attrs), "rich": []}
        return 0, "success\n", ""

    def change(self, config, args):
        head, *changes = args
        option, dummy, name = head.partition("=")
        kind = {"--zone": "zones", "--policy": "policies"}[option]
        if name not in config[kind]:
            return (112 if kind == "zones" else 140), "", f"Error: INVALID_{kind[:-1].upper()}: {name}\n"
        actions = {change.split("=", 1)[0] for change in changes}
        if len(actions) != 1:
            return 2, "", f"firewall-cmd: error: argument {sorted(actions)[-1]}: not allowed with argument {sorted(actions)[0]}\n"
        attrs = config[kind][name]["attrs"]
        for change in changes:
            action, dummy, value = change.partition("=")
            if action == "--set-target":
                if config is self.runtime:
                    return 2, "", "firewall-cmd: error: Option can be used only with --permanent.\n"
                if not self.ignore_writes:
                    attrs["target"] = [value]
                continue
            verb, key = action[2:].split("-", 1)
            key = {"source": "sources", "port": "ports", "ingress-zone": "ingress-zones",
                   "egress-zone": "egress-zones"}[key]
            items = attrs.setdefault(key, [])
            if verb == "add" and key == "sources":
                for other, zone in config["zones"].items():
                    if other != name and value in zone["attrs"].get("sources", []):
                        return 18, "", f"Error: ZONE_CONFLICT: {value}\n"
            if verb == "remove" and value not in items:
                return 30, "", f"Error: NOT_ENABLED: '{value}' not in '{name}'\n"
            if self.ignore_writes:
                continue
            if verb == "add" and value not in items:
                items.append(value)
            if verb == "remove":
                items.remove(value)
        return 0, "success\n", ""


def ufw_host(address):
    """ufw prints a /32 (/128) network as the bare address."""
    network = ipaddress.ip_network(address, strict=False)
    return str(network.network_address) if network.prefixlen == network.max_prefixlen else str(network)


class FakeUfw:
    """ufw 0.36: the user rules, in the order `ufw show added` prints them, and whether it is active."""

    def __init__(self, fixture=True, active=True):
        self.active = active
        self.rules = []
        if fixture:
            for line in (UFW / "show-added.txt").read_text().splitlines()[1:]:
                self.rules.append(shlex.split(line)[1:])

    @staticmethod
    def spec(tokens):
        return tokens[:-2] if len(tokens) > 2 and tokens[-2] == "comment" else tokens

    def lines(self):
        out = []
        for tokens in self.rules:
            spec = self.spec(tokens)
            text = " ".join(["ufw", *spec])
            if spec != tokens:
                text += f" comment '{tokens[-1]}'"
            out.append(text)
        return out

    def __call__(self, args):
        if args == ["status"]:
            return 0, ("Status: active\n\nTo Action From\n" if self.active else "Status: inactive\n"), ""
        if args == ["show", "added"]:
            body = "\n".join(self.lines()) or "(None)"
            return 0, f"Added user rules (see 'ufw status' for running firewall):\n{body}\n", ""
        if args[0] == "allow":
            tokens = list(args)
            if tokens[1] == "from":
                tokens[2] = ufw_host(tokens[2])
            if "-" in tokens[1]:
                return 1, "ERROR: Bad port\n", ""
            for index, rule in enumerate(self.rules):
                if self.spec(rule) == self.spec(tokens):
                    self.rules[index] = tokens
                    return 0, "Rule updated\n", ""
            self.rules.append(tokens)
            return 0, "Rule added\n", ""
        if args[0] == "delete":
            for rule in self.rules:
                if self.spec(rule) == self.spec(args[1:]):
                    self.rules.remove(rule)
                    return 0, "Rule deleted\n", ""
            return 1, "Could not delete non-existent rule\n", ""
        return 1, f"ERROR: fake ufw does not know {args}\n", ""


class FakeCommands:
    """Installs the fakes as AnsibleModule.run_command and get_bin_path; records each call."""

    def __init__(self, firewalld=None, ufw=None):
        self.tools = {"firewall-cmd": firewalld, "ufw": ufw}
        self.calls = []
        self.environ = []

    def install(self, monkeypatch, basic):
        def get_bin_path(module, name, required=False, opt_dirs=None):
            return f"/usr/sbin/{name}" if self.tools.get(name) is not None else None

        def run_command(module, args, environ_update=None, **kwargs):
            name = args[0].rsplit("/", 1)[-1]
            self.calls.append([name, *args[1:]])
            self.environ.append(environ_update)
            return self.tools[name](list(args[1:]))

        monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", get_bin_path)
        monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
        return self

    def writes(self):
        """The calls that are not reads."""
        reads = (["firewall-cmd", "--state"], ["ufw", "status"], ["ufw", "show", "added"])
        return [call for call in self.calls
                if tuple(call) not in {tuple(r) for r in reads} and not call[-1].startswith("--list-all-")]
