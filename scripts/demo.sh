#!/usr/bin/env bash
# The main job on its embedded default: start fresh local container nodes (inventories/demo),
# provision them with playbooks/site.yml and print what they became.
set -euo pipefail
cd "$(dirname "$0")/.."
inventory=inventories/demo/hosts.yml
nodes=$(ansible-inventory -i "$inventory" --list | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)["gpu_nodes"]["hosts"]))')
# NVIDIA's repository is not reachable here: the driver comes from the test repository (tests/repo,
# test doubles with NVIDIA's names), served on the test network as a mirror would be.
tests/repo/serve.sh start >/dev/null
rm -rf .cache/demo/validate
# The same node containers as Molecule's (tests/images/nodes.yml), started fresh; its output only if it fails.
# shellcheck disable=SC2086  # $nodes is a list of names
# Docker runs inside each node (the containers layer): /var/lib/docker on a host directory, emptied
# first, because overlay2 does not work on the node's own overlayfs.
for node in $nodes; do rm -rf "/var/tmp/dlnode-demo/$node/docker"; mkdir -p "/var/tmp/dlnode-demo/$node/docker"; done
started=$(python3 -c 'import json,sys; print(json.dumps({"dlnode_test_nodes": [{"name": n, "networks": [{"name": "dlnode-test"}],
                                                                              "volumes": [f"/var/tmp/dlnode-demo/{n}/docker:/var/lib/docker"]}
                                                                             for n in sys.argv[1:]],
                                                        "dlnode_test_labels": {"dlnode.demo": "true"}}))' $nodes)
if ! log=$(ansible-playbook -i localhost, tests/images/nodes.yml -e "$started" 2>&1); then
  printf '%s\n' "$log" >&2
  echo "demo: the nodes did not start (ansible-playbook tests/images/nodes.yml above)" >&2
  exit 1
fi

# PyPI is reached through a proxy that re-signs TLS here: the nodes get the host's CA bundle.
for node in $nodes; do docker cp -q /etc/ssl/certs/ca-certificates.crt "$node:/usr/local/share/dlnode-host-ca.crt"; done

# Container nodes share this machine's kernel: hugepages, THP, IO schedulers and the CPU
# governor would be this machine's, so the demo leaves the tuning role out.
echo "demo: skipping the tuning role (container nodes share this machine's kernel)"
ansible-playbook -i "$inventory" playbooks/site.yml --skip-tags tuning

echo
echo "== What the nodes are now"
for node in $nodes; do
  docker exec "$node" sh -c 'printf "%s: %s; sysctl file %s keys (swappiness %s; running %s, /proc/sys is read-only in a container); memlock %s; packages %s\n" \
    "$(hostname)" "$(. /etc/os-release; echo $PRETTY_NAME)" "$(grep -c " = " /etc/sysctl.d/90-dlnode-base.conf)" \
    "$(sed -n "s/^vm.swappiness = //p" /etc/sysctl.d/90-dlnode-base.conf)" "$(cat /proc/sys/vm/swappiness)" \
    "$(runuser -l root -c "ulimit -l")" "$(dpkg -l gcc dkms jq chrony numactl 2>/dev/null | grep -c ^ii)/5"
    printf "  NVIDIA driver (test doubles): %s, %s packages held\n" \
      "$(dpkg-query -W -f "\${Package} \${Version}" nvidia-open 2>/dev/null)" "$(apt-mark showhold | grep -c .)"
    printf "  CUDA (test doubles): %s; %s; %s\n" "$(runuser -l nobody -s /bin/sh -c "nvcc --version" 2>/dev/null | tail -2 | head -1)" \
      "$(dpkg-query -W -f "NCCL \${Version}" libnccl2 2>/dev/null)" "$(dpkg-query -W -f "cuDNN \${Version}" libcudnn9-cuda-13 2>/dev/null)"
    printf "  Docker: docker-ce %s (dockerd %s), live-restore %s, storage %s, runtimes %s\n" \
      "$(dpkg-query -W -f "\${Version}" docker-ce 2>/dev/null)" "$(docker info --format "{{.ServerVersion}}" 2>/dev/null)" \
      "$(docker info --format "{{.LiveRestoreEnabled}}" 2>/dev/null)" "$(docker info --format "{{.Driver}}" 2>/dev/null)" \
      "$(docker info --format "{{range \$name, \$_ := .Runtimes}}{{\$name}} {{end}}" 2>/dev/null)"
    printf "  Frameworks: jax %s in /opt/dlnode/venvs/jax (%s)\n" \
      "$(/opt/dlnode/venvs/jax/bin/python -c "import jax; print(jax.__version__)" 2>/dev/null)" \
      "$(/opt/dlnode/venvs/jax/bin/python -c "import jax.numpy as n; print(\"sum of 1..100 =\", int(n.arange(1, 101).sum()))" 2>/dev/null)"'
done
echo
echo "== The acceptance gate (.cache/demo/validate/fleet.md; fleet.html beside it)"
cat .cache/demo/validate/fleet.md
echo "Nodes left running for a look: docker exec -it NODE bash; remove them with: docker rm -f $nodes; tests/repo/serve.sh stop"
