"""cluster_firewall run in-process against fake firewall-cmd and ufw that keep state and answer as
the real ones do (tests/unit/fake_firewall.py); the exact commands are asserted."""
from __future__ import annotations

import pytest
from ansible.module_utils import basic

from ansible_collections.dlnode.gpu.plugins.modules import cluster_firewall
from ansible_collections.dlnode.gpu.tests.unit.fake_firewall import FIREWALLD, FakeCommands, FakeFirewalld, FakeUfw

FIREWALLD_READS = [
    ["firewall-cmd", "--state"],
    ["firewall-cmd", "--permanent", "--list-all-zones"],
    ["firewall-cmd", "--permanent", "--list-all-policies"],
    ["firewall-cmd", "--list-all-zones"],
    ["firewall-cmd", "--list-all-policies"],
]
UFW_READS = [["ufw", "status"], ["ufw", "show", "added"]]
CLUSTER = dict(networks=["10.10.0.0/16", "fd00:10::/64"], ports=["29500/tcp", "60000-61000/tcp"])


def commands(monkeypatch, firewalld=None, ufw=None):
    return FakeCommands(firewalld, ufw).install(monkeypatch, basic)


def test_fresh_firewalld_zone_and_policy_in_one_call_then_nothing(monkeypatch, run_module):
    firewalld = FakeFirewalld(fixture=False)
    fake = commands(monkeypatch, firewalld=firewalld)
    result, failed = run_module(cluster_firewall, CLUSTER)
    assert not failed and result["changed"] and result["backend"] == "firewalld" and result["active"]
    planned = [
        ["firewall-cmd", "--permanent", "--new-zone=dlnode-cluster"],
        ["firewall-cmd", "--permanent", "--zone=dlnode-cluster", "--set-target=ACCEPT"],
        ["firewall-cmd", "--permanent", "--zone=dlnode-cluster", "--add-source=10.10.0.0/16", "--add-source=fd00:10::/64"],
        ["firewall-cmd", "--permanent", "--new-policy=dlnode-ports"],
        ["firewall-cmd", "--permanent", "--policy=dlnode-ports", "--add-ingress-zone=ANY"],
        ["firewall-cmd", "--permanent", "--policy=dlnode-ports", "--add-egress-zone=HOST"],
        ["firewall-cmd", "--permanent", "--policy=dlnode-ports", "--add-port=29500/tcp", "--add-port=60000-61000/tcp"],
        ["firewall-cmd", "--reload"],
    ]
    assert result["commands"] == planned
    # Read, apply, read back.
    assert fake.calls == FIREWALLD_READS + planned + FIREWALLD_READS[1:]
    assert all(env == {"LANG": "C", "LC_ALL": "C", "LC_MESSAGES": "C"} for env in fake.environ)
    for scope in ("permanent", "runtime"):
        assert firewalld.attr(scope, "zones", "dlnode-cluster", "sources") == ["10.10.0.0/16", "fd00:10::/64"]
        assert firewalld.attr(scope, "zones", "dlnode-cluster", "target") == ["ACCEPT"]
        assert firewalld.attr(scope, "policies", "dlnode-ports", "ports") == ["29500/tcp", "60000-61000/tcp"]
        assert firewalld.attr(scope, "policies", "dlnode-ports", "ingress-zones") == ["ANY"]
    wanted = {"networks": ["10.10.0.0/16", "fd00:10::/64"], "ports": ["29500/tcp", "60000-61000/tcp"]}
    assert result["after"] == {"permanent": wanted, "runtime": wanted}
    assert result["diff"]["before"] == {"permanent": {"networks": [], "ports": []}, "runtime": {"networks": [], "ports": []}}

    fake.calls.clear()
    again, failed = run_module(cluster_firewall, CLUSTER)
    assert not failed and not again["changed"] and again["commands"] == []
    assert fake.calls == FIREWALLD_READS
    assert again["before"] == again["after"] == result["after"]


def test_check_mode_returns_the_exact_plan_and_writes_nothing(monkeypatch, run_module):
    firewalld = FakeFirewalld()
    fake = commands(monkeypatch, firewalld=firewalld)
    result, failed = run_module(cluster_firewall, dict(networks=["10.0.0.0/8", "fd00::/64"], ports=["29500/tcp"]),
                                check_mode=True, diff=True)
    assert not failed and result["changed"]
    assert fake.writes() == [] and fake.calls == FIREWALLD_READS
    assert result["commands"] == [
        ["firewall-cmd", "--permanent", "--zone=dlnode-cluster", "--remove-source=192.168.5.7"],
        ["firewall-cmd", "--permanent", "--zone=dlnode-cluster", "--add-source=fd00::/64"],
        ["firewall-cmd", "--permanent", "--policy=dlnode-ports", "--remove-port=60000-61000/tcp"],
        ["firewall-cmd", "--zone=dlnode-cluster", "--remove-source=192.168.5.7", "--remove-source=10.0.0.5/32"],
        ["firewall-cmd", "--zone=dlnode-cluster", "--add-source=fd00::/64"],
        ["firewall-cmd", "--policy=dlnode-ports", "--remove-port=60000-61000/tcp"],
    ]
    assert result["diff"]["before"]["runtime"]["networks"] == ["10.0.0.0/8", "10.0.0.5/32", "192.168.5.7/32"]
    assert result["diff"]["after"]["runtime"] == {"networks": ["10.0.0.0/8", "fd00::/64"], "ports": ["29500/tcp"]}

    # The real run does exactly what check mode said.
    fake.calls.clear()
    real = run_module(cluster_firewall, dict(networks=["10.0.0.0/8", "fd00::/64"], ports=["29500/tcp"]))[0]
    assert real["commands"] == result["commands"] and fake.writes() == result["commands"]
    assert real["after"] == result["after"]
    assert firewalld.attr("runtime", "zones", "dlnode-cluster", "sources") == ["10.0.0.0/8", "fd00::/64"]
    # The operator's other zones are untouched.
    assert firewalld.attr("permanent", "zones", "work", "sources") == ["172.16.0.0/12"]


def test_a_source_bound_to_another_zone_fails_before_any_write(monkeypatch, run_module):
    fake = commands(monkeypatch, firewalld=FakeFirewalld())
    result, failed = run_module(cluster_firewall, dict(networks=["172.16.0.0/12", "10.0.0.0/8"]))
    assert failed and fake.writes() == []
    assert result["msg"].startswith("networks: 172.16.0.0/12 is already a source of the firewalld zone 'work' "
                                    "(permanent configuration), and firewalld binds a source to one zone only. "
                                    "Nothing was changed. Remove it there (firewall-cmd --permanent --zone=work "
                                    "--remove-source=172.16.0.0/12)")


def test_firewalld_that_does_not_keep_a_change_fails_the_read_back(monkeypatch, run_module):
    firewalld = FakeFirewalld()
    firewalld.ignore_writes = True  # says "success" and keeps nothing
    commands(monkeypatch, firewalld=firewalld)
    result, failed = run_module(cluster_firewall, dict(networks=["10.0.0.0/8"], ports=["29500/tcp", "60000-61000/tcp"]))
    assert failed and result["msg"] == (
        "firewalld did not keep the change: after the run these commands are still needed: "
        "firewall-cmd --permanent --zone=dlnode-cluster --remove-source=192.168.5.7; "
        "firewall-cmd --zone=dlnode-cluster --remove-source=192.168.5.7 --remove-source=10.0.0.5/32")


def test_a_failing_command_is_reported_with_its_error(monkeypatch, run_module):
    firewalld = FakeFirewalld(fixture=False)
    firewalld.add_zone("permanent", "dlnode-ports")  # a zone that takes the policy's name
    commands(monkeypatch, firewalld=firewalld)
    result, failed = run_module(cluster_firewall, dict(ports=["29500/tcp"]))
    assert failed and result["msg"] == ("firewall-cmd --permanent --new-policy=dlnode-ports failed (rc 26): "
                                        "Error: NAME_CONFLICT: dlnode-ports (0 of the 5 planned commands had run; "
                                        "a new run plans again from what is there)")


def test_auto_prefers_running_firewalld_over_active_ufw(monkeypatch, run_module):
    ufw = FakeUfw()
    fake = commands(monkeypatch, firewalld=FakeFirewalld(fixture=False), ufw=ufw)
    result = run_module(cluster_firewall, dict(networks=["10.10.0.0/16"]))[0]
    assert result["backend"] == "firewalld" and not any(call[0] == "ufw" for call in fake.calls)


def test_auto_takes_active_ufw_when_firewalld_is_stopped(monkeypatch, run_module):
    ufw = FakeUfw(fixture=False)
    fake = commands(monkeypatch, firewalld=FakeFirewalld(running=False), ufw=ufw)
    result, failed = run_module(cluster_firewall, CLUSTER)
    assert not failed and result["backend"] == "ufw" and result["active"]
    planned = [
        ["ufw", "allow", "from", "10.10.0.0/16", "comment", "dlnode-cluster"],
        ["ufw", "allow", "from", "fd00:10::/64", "comment", "dlnode-cluster"],
        ["ufw", "allow", "29500/tcp", "comment", "dlnode-cluster"],
        ["ufw", "allow", "60000:61000/tcp", "comment", "dlnode-cluster"],
    ]
    assert result["commands"] == planned
    assert fake.calls == [["firewall-cmd", "--state"]] + UFW_READS + planned + [["ufw", "show", "added"]]
    assert ufw.lines() == ["ufw allow from 10.10.0.0/16 comment 'dlnode-cluster'",
                           "ufw allow from fd00:10::/64 comment 'dlnode-cluster'",
                           "ufw allow 29500/tcp comment 'dlnode-cluster'",
                           "ufw allow 60000:61000/tcp comment 'dlnode-cluster'"]
    fake.calls.clear()
    again = run_module(cluster_firewall, CLUSTER)[0]
    assert not again["changed"] and fake.writes() == []


def test_auto_with_no_firewall_on_does_nothing_and_says_why(monkeypatch, run_module):
    fake = commands(monkeypatch, ufw=FakeUfw(active=False))
    result, failed = run_module(cluster_firewall, CLUSTER)
    assert not failed and not result["changed"] and result["backend"] == "none"
    assert result["reason"] == ("firewalld is not running (firewall-cmd is not installed) and ufw is not active "
                                "(Status: inactive): no host firewall blocks the cluster network")
    assert fake.calls == [["ufw", "status"]]


def test_auto_with_no_firewall_installed(monkeypatch, run_module):
    commands(monkeypatch)
    result = run_module(cluster_firewall, CLUSTER)[0]
    assert result["backend"] == "none" and "(ufw is not installed)" in result["reason"]


def test_ufw_on_request_while_inactive_keeps_the_operator_rules(monkeypatch, run_module):
    ufw = FakeUfw(active=False)
    commands(monkeypatch, ufw=ufw)
    result, failed = run_module(cluster_firewall, dict(backend="ufw", networks=["10.0.0.5/32", "fd00::/64"],
                                                       ports=["22/tcp", "29500/tcp"]), diff=True)
    assert not failed and result["backend"] == "ufw" and not result["active"]
    assert result["commands"] == [["ufw", "delete", "allow", "60000:61000/tcp", "comment", "dlnode-cluster"],
                                  ["ufw", "allow", "29500/tcp", "comment", "dlnode-cluster"]]
    assert ufw.lines() == ["ufw allow 22/tcp",
                           "ufw allow from 192.0.2.0/24 to any port 6817 proto tcp comment 'slurm ctld'",
                           "ufw allow from 10.0.0.5 comment 'dlnode-cluster'",
                           "ufw allow from 10.0.0.6 comment 'x'",
                           "ufw allow from fd00::/64 comment 'dlnode-cluster'",
                           "ufw allow 29500/tcp comment 'dlnode-cluster'"]
    assert result["diff"]["before"] == {"networks": ["10.0.0.5/32", "fd00::/64"], "ports": ["22/tcp", "60000-61000/tcp"]}
    assert result["diff"]["after"] == {"networks": ["10.0.0.5/32", "fd00::/64"], "ports": ["22/tcp", "29500/tcp"]}


def test_firewalld_on_request_but_stopped_fails_with_what_to_do(monkeypatch, run_module):
    commands(monkeypatch, firewalld=FakeFirewalld(running=False))
    result, failed = run_module(cluster_firewall, dict(backend="firewalld", networks=["10.10.0.0/16"]))
    assert failed and result["msg"] == ("backend=firewalld: firewalld is not running (not running): start it, "
                                        "or use backend=auto to open the firewall that is on")


@pytest.mark.parametrize("backend, message", [
    ("firewalld", "backend=firewalld: firewalld is not running (firewall-cmd is not installed)"),
    ("ufw", "ufw is not installed: install ufw"),
])
def test_backend_on_request_but_not_installed(monkeypatch, run_module, backend, message):
    commands(monkeypatch)
    result, failed = run_module(cluster_firewall, dict(backend=backend, networks=["10.10.0.0/16"]))
    assert failed and result["msg"].startswith(message)


def test_ports_on_a_firewalld_without_policies_are_refused(monkeypatch, run_module):
    firewalld = FakeFirewalld(fixture=False)
    fake = commands(monkeypatch, firewalld=firewalld)

    def old_firewalld(args):
        if args[-1] == "--list-all-policies":
            return 2, "", "firewall-cmd: error: unrecognized arguments: --list-all-policies\n"
        return firewalld(args)

    fake.tools["firewall-cmd"] = old_firewalld
    result, failed = run_module(cluster_firewall, dict(ports=["29500/tcp"]))
    assert failed and result["msg"].startswith("ports: this firewalld has no policies (firewall-cmd --list-all-policies: "
                                               "firewall-cmd: error: unrecognized arguments")
    result, failed = run_module(cluster_firewall, dict(networks=["10.10.0.0/16"]))
    assert not failed and result["changed"]


@pytest.mark.parametrize("args, message", [
    (dict(networks=["10.10.0.1/16"]), "networks[0]: '10.10.0.1/16' has host bits set: the network is 10.10.0.0/16"),
    (dict(networks=["0.0.0.0/0"]), "networks[0]: '0.0.0.0/0' would trust every source"),
    (dict(ports=["29500/tcp", "29500"]), "ports[1]: '29500' is not a port: write N/tcp, N/udp or a range N-M/tcp"),
    (dict(ports=["70000/udp"]), "ports[0]: '70000/udp': ports are 1 to 65535"),
    (dict(zone="dlnode.cluster"), "zone: 'dlnode.cluster' is not a firewalld zone name"),
    (dict(policy="dlnode-cluster"), "policy: 'dlnode-cluster' is also the zone's name"),
    (dict(comment="two words"), "comment: 'two words' is not a rule marker"),
    (dict(backend="iptables"), "value of backend must be one of: auto, firewalld, ufw, got: iptables"),
])
def test_bad_input_fails_before_touching_the_firewall(monkeypatch, run_module, args, message):
    fake = commands(monkeypatch, firewalld=FakeFirewalld(), ufw=FakeUfw())
    result, failed = run_module(cluster_firewall, args)
    assert failed and result["msg"].startswith(message)
    assert fake.calls == []


@pytest.mark.parametrize("name", ["permanent-zones", "runtime-zones", "permanent-policies", "runtime-policies"])
def test_the_fake_prints_what_the_real_firewall_cmd_printed(name):
    """Keeps the fake honest: loaded from the captured output, it prints that output again."""
    firewalld = FakeFirewalld()
    scope, kind = name.split("-")
    args = (["--permanent"] if scope == "permanent" else []) + [f"--list-all-{kind}"]
    assert firewalld(args) == (0, (FIREWALLD / f"{name}.txt").read_text(), "")
