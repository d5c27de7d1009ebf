#!/usr/bin/env bash
# The main job on its embedded default: start fresh local container nodes (inventories/demo),
# provision them with playbooks/site.yml and print what they became.
set -euo pipefail
cd "$(dirname "$0")/.."
inventory=inventories/demo/hosts.yml
nodes=$(ansible-inventory -i "$inventory" --list | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)["gpu_nodes"]["hosts"]))')
caps=$(python3 - <<'PY'
import yaml
play = yaml.safe_load(open("molecule/shared/create.yml"))[0]
print(" ".join("--cap-add " + c for c in play["vars"]["__node_capabilities"]))
PY
)
for node in $nodes; do
  docker rm -f "$node" >/dev/null 2>&1 || true
  # shellcheck disable=SC2086  # $caps is a list of options
  docker run -d --name "$node" --hostname "$node" $caps \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined --cgroupns host \
    -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /tmp dlnode/node:debian12 >/dev/null
done
for node in $nodes; do
  docker exec "$node" systemctl is-system-running --wait >/dev/null || true
done

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
    "$(runuser -l root -c "ulimit -l")" "$(dpkg -l gcc dkms jq chrony numactl 2>/dev/null | grep -c ^ii)/5"'
done
echo "Nodes left running for a look: docker exec -it NODE bash; remove them with: docker rm -f $nodes"
