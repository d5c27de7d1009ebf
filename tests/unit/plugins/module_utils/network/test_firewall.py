"""module_utils.network.firewall: the declaration's validation, the real listings of firewall-cmd
and ufw (tests/fixtures/firewall/), and the plans, command by command."""
from __future__ import annotations

import copy

import pytest

from ansible_collections.dlnode.gpu.plugins.module_utils.network import firewall as fw
from ansible_collections.dlnode.gpu.tests.unit.fake_firewall import FIREWALLD, UFW

EMPTY = {"zones": {}, "policies": {}}


def listing(name):
    return fw.parse_listing((FIREWALLD / f"{name}.txt").read_text())


@pytest.fixture
def state():
    """The captured node: zone dlnode-cluster (permanent 10.0.0.0/8 192.168.5.7, runtime also 10.0.0.5/32),
    zone work with source 172.16.0.0/12, policy dlnode-ports (ANY -> HOST, 29500/tcp 60000-61000/tcp)."""
    return {scope: {"zones": listing(f"{scope}-zones"), "policies": listing(f"{scope}-policies")}
            for scope in ("permanent", "runtime")}


def fresh():
    return {"permanent": copy.deepcopy(EMPTY), "runtime": copy.deepcopy(EMPTY)}


# -- the declaration

def test_networks_are_normalized_deduplicated_and_sorted():
    assert fw.parse_networks(["fd00:10:0:0::/64", " 192.168.50.0/24", "10.10.0.0/16", "10.10.0.0/16",
                              "10.0.0.7", "FD00:10::/64", "10.2.0.0/16"]) == \
        ["10.0.0.7/32", "10.2.0.0/16", "10.10.0.0/16", "192.168.50.0/24", "fd00:10::/64"]
    assert fw.parse_networks([]) == []


@pytest.mark.parametrize("values, message", [
    (["10.10.0.1/16"], "networks[0]: '10.10.0.1/16' has host bits set: the network is 10.10.0.0/16; write that, "
                       "or 10.10.0.1/32 for the single host"),
    (["10.0.0.0/8", "fd00::1/64"], "networks[1]: 'fd00::1/64' has host bits set: the network is fd00::/64; "
                                   "write that, or fd00::1/128 for the single host"),
    (["cluster"], "networks[0]: 'cluster' is not an IPv4 or IPv6 network: write it in CIDR form, such as "
                  "10.10.0.0/16 or fd00:10::/64 (a bare address is one host)"),
    (["10.0.0.0/33"], "networks[0]: '10.0.0.0/33' is not an IPv4 or IPv6 network"),
    (["10.0.0.0/"], "networks[0]: '10.0.0.0/' is not an IPv4 or IPv6 network"),
    (["0.0.0.0/0"], "networks[0]: '0.0.0.0/0' would trust every source, which is the firewall turned off"),
    (["::/0"], "networks[0]: '::/0' would trust every source"),
])
def test_bad_networks_are_named(values, message):
    with pytest.raises(fw.FirewallError) as err:
        fw.parse_networks(values)
    assert str(err.value).startswith(message)


def test_ports_are_normalized_deduplicated_and_sorted():
    assert fw.parse_ports(["29500/tcp", "60000-61000/tcp", "6818/TCP", "6817-6817/tcp", " 29500/tcp ", "4791/udp"]) == \
        ["6817/tcp", "6818/tcp", "29500/tcp", "60000-61000/tcp", "4791/udp"]


@pytest.mark.parametrize("value, message", [
    ("29500", "ports[0]: '29500' is not a port: write N/tcp, N/udp or a range N-M/tcp, such as 29500/tcp or 60000-61000/tcp"),
    ("60000:61000/tcp", "ports[0]: '60000:61000/tcp' is not a port: write N/tcp"),
    ("29500/sctp", "ports[0]: '29500/sctp' is not a port"),
    ("ssh", "ports[0]: 'ssh' is not a port"),
    ("-1/tcp", "ports[0]: '-1/tcp' is not a port"),
    ("0/tcp", "ports[0]: '0/tcp': ports are 1 to 65535"),
    ("65536/udp", "ports[0]: '65536/udp': ports are 1 to 65535"),
    ("60000-70000/tcp", "ports[0]: '60000-70000/tcp': ports are 1 to 65535"),
    ("61000-60000/tcp", "ports[0]: '61000-60000/tcp': the range starts after it ends; write 60000-61000/tcp"),
])
def test_bad_ports_are_named(value, message):
    with pytest.raises(fw.FirewallError) as err:
        fw.parse_ports([value])
    assert str(err.value) == message or str(err.value).startswith(message)


@pytest.mark.parametrize("zone, policy, comment, message", [
    ("dlnode-cluster-net", "dlnode-ports", "dlnode-cluster",
     "zone: 'dlnode-cluster-net' is not a firewalld zone name: 1 to 17 letters, digits, '_' or '-'"),
    ("dl.cluster", "dlnode-ports", "dlnode-cluster", "zone: 'dl.cluster' is not a firewalld zone name"),
    ("", "dlnode-ports", "dlnode-cluster", "zone: '' is not a firewalld zone name"),
    ("dlnode-cluster", "dlnode-cluster-ports", "dlnode-cluster",
     "policy: 'dlnode-cluster-ports' is not a firewalld policy name: 1 to 18 letters, digits, '_' or '-'"),
    ("dlnode", "dlnode", "dlnode-cluster",
     "policy: 'dlnode' is also the zone's name; firewalld keeps zones and policies in one namespace"),
    ("dlnode-cluster", "dlnode-ports", "dlnode cluster",
     "comment: 'dlnode cluster' is not a rule marker: 1 to 64 letters, digits, '_', '-', '.' or ':'"),
    ("dlnode-cluster", "dlnode-ports", "it's", "comment: \"it's\" is not a rule marker"),
])
def test_bad_names_are_named(zone, policy, comment, message):
    with pytest.raises(fw.FirewallError) as err:
        fw.check_names(zone, policy, comment)
    assert str(err.value).startswith(message)


def test_longest_names_firewalld_takes_pass():
    fw.check_names("a" * 17, "b" * 18, "dlnode-cluster")


# -- what firewall-cmd lists

def test_listing_of_real_zones(state):
    zones = state["permanent"]["zones"]
    assert sorted(zones) == ["block", "dlnode-cluster", "dmz", "drop", "external", "home", "internal",
                             "public", "trusted", "work"]
    assert zones["dlnode-cluster"]["target"] == ["ACCEPT"]
    assert zones["dlnode-cluster"]["sources"] == ["10.0.0.0/8", "192.168.5.7"]
    assert zones["work"]["sources"] == ["172.16.0.0/12"]
    assert zones["block"]["target"] == ["%%REJECT%%"]
    assert zones["public"]["services"] == ["dhcpv6-client", "ssh"]
    # Rich rules are on tab-indented lines of their own and stay out of the attributes.
    assert zones["internal"]["rich rules"] == [] and zones["internal"]["services"][-1] == "ssh"
    assert state["runtime"]["zones"]["dlnode-cluster"]["sources"] == ["10.0.0.0/8", "192.168.5.7", "10.0.0.5/32"]


def test_listing_of_real_policies(state):
    policy = state["permanent"]["policies"]["dlnode-ports"]
    assert policy["ingress-zones"] == ["ANY"] and policy["egress-zones"] == ["HOST"]
    assert policy["ports"] == ["29500/tcp", "60000-61000/tcp"]
    assert sorted(state["runtime"]["policies"]) == ["allow-host-ipv6", "dlnode-ports"]


def test_listed_keys_compare_with_the_declaration():
    assert fw.network_key("192.168.5.7") == "192.168.5.7/32"
    assert fw.network_key("FD01::/64") == "fd01::/64"
    assert fw.network_key("10.0.0.1/8") == "10.0.0.0/8"
    assert fw.network_key("ipset:cluster") == "ipset:cluster"
    assert fw.port_key("29501-29501/tcp") == "29501/tcp"
    assert fw.port_key("60000:61000/tcp") == "60000-61000/tcp"
    assert fw.port_key("9/sctp") == "9/sctp"
    assert fw.port_key("ssh") == "ssh"


# -- firewalld plans

def test_fresh_firewalld_gets_zone_and_policy_then_one_reload():
    steps = fw.plan_firewalld(fresh(), "dlnode-cluster", "dlnode-ports", ["10.10.0.0/16", "fd00:10::/64"],
                              ["29500/tcp", "60000-61000/tcp"])
    assert steps == [
        ["--permanent", "--new-zone=dlnode-cluster"],
        ["--permanent", "--zone=dlnode-cluster", "--set-target=ACCEPT"],
        ["--permanent", "--zone=dlnode-cluster", "--add-source=10.10.0.0/16", "--add-source=fd00:10::/64"],
        ["--permanent", "--new-policy=dlnode-ports"],
        ["--permanent", "--policy=dlnode-ports", "--add-ingress-zone=ANY"],
        ["--permanent", "--policy=dlnode-ports", "--add-egress-zone=HOST"],
        ["--permanent", "--policy=dlnode-ports", "--add-port=29500/tcp", "--add-port=60000-61000/tcp"],
        ["--reload"],
    ]


def test_networks_only_leave_policies_alone():
    assert fw.plan_firewalld(fresh(), "dlnode-cluster", "dlnode-ports", ["10.10.0.0/16"], []) == [
        ["--permanent", "--new-zone=dlnode-cluster"],
        ["--permanent", "--zone=dlnode-cluster", "--set-target=ACCEPT"],
        ["--permanent", "--zone=dlnode-cluster", "--add-source=10.10.0.0/16"],
        ["--reload"],
    ]


def test_existing_objects_change_by_difference_in_both_configurations(state):
    steps = fw.plan_firewalld(state, "dlnode-cluster", "dlnode-ports", ["10.0.0.0/8", "fd00::/64"], ["29500/tcp"])
    assert steps == [
        ["--permanent", "--zone=dlnode-cluster", "--remove-source=192.168.5.7"],
        ["--permanent", "--zone=dlnode-cluster", "--add-source=fd00::/64"],
        ["--permanent", "--policy=dlnode-ports", "--remove-port=60000-61000/tcp"],
        # The running firewall has drifted (10.0.0.5/32 was added at runtime only): it is planned on its own.
        ["--zone=dlnode-cluster", "--remove-source=192.168.5.7", "--remove-source=10.0.0.5/32"],
        ["--zone=dlnode-cluster", "--add-source=fd00::/64"],
        ["--policy=dlnode-ports", "--remove-port=60000-61000/tcp"],
    ]


def test_declared_state_plans_nothing(state):
    wanted = (["10.0.0.0/8", "192.168.5.7/32"], ["29500/tcp", "60000-61000/tcp"])
    state["runtime"] = copy.deepcopy(state["permanent"])
    assert fw.plan_firewalld(state, "dlnode-cluster", "dlnode-ports", *wanted) == []


def test_a_source_listed_twice_is_removed_once(state):
    state["runtime"] = copy.deepcopy(state["permanent"])
    for scope in state.values():
        scope["zones"]["dlnode-cluster"]["sources"] = ["10.0.0.0/8", "10.0.0.1/8"]
    assert fw.plan_firewalld(state, "dlnode-cluster", "dlnode-ports", ["10.0.0.0/8"], ["29500/tcp", "60000-61000/tcp"]) == [
        ["--permanent", "--zone=dlnode-cluster", "--remove-source=10.0.0.1/8"],
        ["--zone=dlnode-cluster", "--remove-source=10.0.0.1/8"],
    ]


def test_an_empty_declaration_empties_what_exists_and_creates_nothing(state):
    steps = fw.plan_firewalld(state, "dlnode-cluster", "dlnode-ports", [], [])
    assert steps == [
        ["--permanent", "--zone=dlnode-cluster", "--remove-source=10.0.0.0/8", "--remove-source=192.168.5.7"],
        ["--permanent", "--policy=dlnode-ports", "--remove-port=29500/tcp", "--remove-port=60000-61000/tcp"],
        ["--zone=dlnode-cluster", "--remove-source=10.0.0.0/8", "--remove-source=192.168.5.7",
         "--remove-source=10.0.0.5/32"],
        ["--policy=dlnode-ports", "--remove-port=29500/tcp", "--remove-port=60000-61000/tcp"],
    ]
    assert fw.plan_firewalld(fresh(), "dlnode-cluster", "dlnode-ports", [], []) == []


def test_a_changed_target_or_a_zone_missing_at_runtime_needs_a_reload(state):
    state["permanent"]["zones"]["dlnode-cluster"]["target"] = ["default"]
    state["runtime"]["zones"]["dlnode-cluster"]["target"] = ["default"]
    assert fw.plan_firewalld(state, "dlnode-cluster", "dlnode-ports", ["10.0.0.0/8", "192.168.5.7/32"],
                             ["29500/tcp", "60000-61000/tcp"]) == [
        ["--permanent", "--zone=dlnode-cluster", "--set-target=ACCEPT"],
        ["--reload"],
    ]
    state["permanent"]["zones"]["dlnode-cluster"]["target"] = ["ACCEPT"]
    del state["runtime"]["zones"]["dlnode-cluster"]
    assert fw.plan_firewalld(state, "dlnode-cluster", "dlnode-ports", ["10.0.0.0/8", "192.168.5.7/32"],
                             ["29500/tcp", "60000-61000/tcp"]) == [["--reload"]]


def test_a_policy_someone_pointed_elsewhere_is_pointed_back(state):
    state["runtime"] = copy.deepcopy(state["permanent"])
    for scope in state.values():
        scope["policies"]["dlnode-ports"]["ingress-zones"] = ["public"]
    assert fw.plan_firewalld(state, "dlnode-cluster", "dlnode-ports", ["10.0.0.0/8", "192.168.5.7/32"],
                             ["29500/tcp", "60000-61000/tcp"]) == [
        ["--permanent", "--policy=dlnode-ports", "--remove-ingress-zone=public"],
        ["--permanent", "--policy=dlnode-ports", "--add-ingress-zone=ANY"],
        ["--policy=dlnode-ports", "--remove-ingress-zone=public"],
        ["--policy=dlnode-ports", "--add-ingress-zone=ANY"],
    ]


def test_a_source_of_another_zone_is_refused_with_what_to_do(state):
    with pytest.raises(fw.FirewallError) as err:
        fw.plan_firewalld(state, "dlnode-cluster", "dlnode-ports", ["10.0.0.0/8", "172.16.0.0/12"], [])
    assert str(err.value) == (
        "networks: 172.16.0.0/12 is already a source of the firewalld zone 'work' (permanent configuration), "
        "and firewalld binds a source to one zone only. Nothing was changed. Remove it there "
        "(firewall-cmd --permanent --zone=work --remove-source=172.16.0.0/12) to trust it through the zone "
        "'dlnode-cluster', or leave it out of networks and let the zone 'work' decide its traffic")


def test_a_runtime_only_source_of_another_zone_is_refused_too(state):
    state["runtime"]["zones"]["public"]["sources"] = ["10.20.0.0/16"]
    with pytest.raises(fw.FirewallError, match=r"^networks: 10.20.0.0/16 is already a source of the firewalld zone "
                                               r"'public' \(runtime configuration\).*\(firewall-cmd --zone=public "
                                               r"--remove-source=10.20.0.0/16\)"):
        fw.plan_firewalld(state, "dlnode-cluster", "dlnode-ports", ["10.20.0.0/16"], [])


def test_firewalld_view_per_configuration(state):
    assert fw.firewalld_view(state, "dlnode-cluster", "dlnode-ports") == {
        "permanent": {"networks": ["10.0.0.0/8", "192.168.5.7/32"], "ports": ["29500/tcp", "60000-61000/tcp"]},
        "runtime": {"networks": ["10.0.0.0/8", "10.0.0.5/32", "192.168.5.7/32"],
                    "ports": ["29500/tcp", "60000-61000/tcp"]},
    }
    assert fw.firewalld_view(fresh(), "dlnode-cluster", "dlnode-ports")["runtime"] == {"networks": [], "ports": []}


# -- ufw

@pytest.fixture
def rules():
    """Real `ufw show added`: our range and two networks, the operator's 22/tcp, a Slurm rule and a host."""
    return fw.parse_ufw_added((UFW / "show-added.txt").read_text())


def test_ufw_rules_are_read_with_their_comment(rules):
    assert [(rule["spec"], rule["comment"]) for rule in rules] == [
        (["allow", "60000:61000/tcp"], "dlnode-cluster"),
        (["allow", "22/tcp"], None),
        (["allow", "from", "192.0.2.0/24", "to", "any", "port", "6817", "proto", "tcp"], "slurm ctld"),
        (["allow", "from", "10.0.0.5"], "dlnode-cluster"),
        (["allow", "from", "10.0.0.6"], "x"),
        (["allow", "from", "fd00::/64"], "dlnode-cluster"),
    ]
    assert rules[2]["tokens"][-2:] == ["comment", "slurm ctld"]
    assert fw.parse_ufw_added("Added user rules (see 'ufw status' for running firewall):\n(None)\n") == []


@pytest.mark.parametrize("spec, key", [
    (["allow", "from", "10.0.0.5"], ("network", "10.0.0.5/32")),
    (["allow", "from", "FD00::/64"], ("network", "fd00::/64")),
    (["allow", "60000:61000/tcp"], ("port", "60000-61000/tcp")),
    (["allow", "22/tcp"], ("port", "22/tcp")),
    (["allow", "22"], None),
    (["allow", "from", "any"], None),
    (["deny", "from", "10.0.0.0/8"], None),
    (["allow", "from", "192.0.2.0/24", "to", "any", "port", "6817", "proto", "tcp"], None),
])
def test_ufw_rule_forms(spec, key):
    assert fw.ufw_key(spec) == key


def test_ufw_plan_deletes_only_our_undeclared_rules_and_adds_what_nothing_allows(rules):
    steps = fw.plan_ufw(rules, "dlnode-cluster", fw.parse_networks(["fd00::/64", "10.0.0.6", "10.0.0.5/32"]),
                        fw.parse_ports(["29500/tcp", "22/tcp", "6817-6818/tcp"]))
    assert steps == [
        ["delete", "allow", "60000:61000/tcp", "comment", "dlnode-cluster"],
        # 10.0.0.6 and 22/tcp are allowed by the operator's own rules: left to them, not added again.
        ["allow", "6817:6818/tcp", "comment", "dlnode-cluster"],
        ["allow", "29500/tcp", "comment", "dlnode-cluster"],
    ]


def test_ufw_empty_declaration_deletes_all_our_rules_and_nothing_else(rules):
    assert fw.plan_ufw(rules, "dlnode-cluster", [], []) == [
        ["delete", "allow", "60000:61000/tcp", "comment", "dlnode-cluster"],
        ["delete", "allow", "from", "10.0.0.5", "comment", "dlnode-cluster"],
        ["delete", "allow", "from", "fd00::/64", "comment", "dlnode-cluster"],
    ]


def test_ufw_rule_of_ours_in_a_form_we_do_not_write_is_deleted():
    rules = fw.parse_ufw_added("ufw allow from 10.0.0.0/8 to any port 22 proto tcp comment 'dlnode-cluster'\n")
    assert fw.plan_ufw(rules, "dlnode-cluster", [], []) == [
        ["delete", "allow", "from", "10.0.0.0/8", "to", "any", "port", "22", "proto", "tcp", "comment", "dlnode-cluster"]]


def test_ufw_declared_state_plans_nothing(rules):
    assert fw.plan_ufw(rules, "dlnode-cluster", ["10.0.0.5/32", "fd00::/64"], ["60000-61000/tcp"]) == []


def test_ufw_view_shows_ours_and_the_declared_ones_the_operator_allows(rules):
    assert fw.ufw_view(rules, "dlnode-cluster", ["10.0.0.6/32"], ["22/tcp"]) == {
        "networks": ["10.0.0.5/32", "10.0.0.6/32", "fd00::/64"], "ports": ["22/tcp", "60000-61000/tcp"]}
