#!/usr/bin/env bash
# Serve the NVIDIA test-double repositories (tests/repo/build.sh) to node containers: a repository
# container on the test network, reachable from every node on that network as http://dlnode-repo/
# (http://dlnode-repo/cuda/debian12/x86_64/ ...). It runs `python3 -m http.server` in the node
# image as nobody, with OUTDIR mounted read-only and its private/ (the signing keys) masked.
#   start   build the repositories when their recipe changed, create the network, (re)start the
#           container unless it already serves OUTDIR, and wait until it answers
#   stop    remove the container, and the network when no other container is on it
#   status  print what runs and what the nodes see
# Usage: tests/repo/serve.sh start|stop|status [OUTDIR]   (default: .cache/repo of this checkout)
# DLNODE_REPO_NETWORK and DLNODE_REPO_NAME override the network (dlnode-test) and the container's
# name (dlnode-repo), which is also its host name on that network.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
network=${DLNODE_REPO_NETWORK:-dlnode-test}
name=${DLNODE_REPO_NAME:-dlnode-repo}
image=dlnode/node:debian12
action=${1:-}
out=${2:-$here/../../.cache/repo}

# answers: the repository answers from inside its container.
answers() {
  docker exec "$name" python3 -c \
    'import urllib.request; urllib.request.urlopen("http://localhost/cuda/KEY-FINGERPRINT", timeout=2)' 2>/dev/null
}

case "$action" in
  start)
    "$here/build.sh" "$out"
    out=$(cd "$out" && pwd)
    docker image inspect "$image" >/dev/null 2>&1 || "$here/../images/build.sh"
    docker network inspect "$network" >/dev/null 2>&1 || docker network create "$network" >/dev/null
    started="already serving"
    serving=$(docker inspect -f '{{ .State.Running }} {{ range .Mounts }}{{ if eq .Destination "/srv/repo" }}{{ .Source }}{{ end }}{{ end }}' \
      "$name" 2>/dev/null || true)
    if [ "$serving" != "true $out" ]; then
      docker rm -f "$name" >/dev/null 2>&1 || true
      docker run -d --name "$name" --hostname "$name" --network "$network" --user 65534:65534 \
        --label dlnode.repo=true \
        --mount "type=bind,source=$out,target=/srv/repo,readonly" \
        --mount "type=tmpfs,target=/srv/repo/private,tmpfs-size=4k" \
        --entrypoint python3 "$image" -m http.server 80 --directory /srv/repo >/dev/null
      started="started, serving"
    fi
    for _ in $(seq 50); do
      if answers; then
        echo "repo: $started $out as http://$name/ on network $network"
        exit 0
      fi
      sleep 0.2
    done
    docker logs "$name" >&2 || true
    echo "repo: $name did not answer on http://localhost/ inside its container (its log above)" >&2
    exit 1
    ;;
  stop)
    docker rm -f "$name" >/dev/null 2>&1 || true
    if docker network inspect "$network" >/dev/null 2>&1; then
      if [ -z "$(docker network inspect -f '{{ range .Containers }}{{ .Name }} {{ end }}' "$network")" ]; then
        docker network rm "$network" >/dev/null
      else
        echo "repo: network $network kept: $(docker network inspect -f '{{ range .Containers }}{{ .Name }} {{ end }}' "$network")still on it"
      fi
    fi
    ;;
  status)
    if answers; then
      echo "repo: $name serves http://$name/ on network $network, key $(docker exec "$name" cat /srv/repo/cuda/KEY-FINGERPRINT)"
    else
      echo "repo: $name is not serving"
      exit 1
    fi
    ;;
  *)
    echo "usage: tests/repo/serve.sh start|stop|status [OUTDIR]" >&2
    exit 2
    ;;
esac
