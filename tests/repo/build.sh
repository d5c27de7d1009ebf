#!/usr/bin/env bash
# Build the local signed apt repositories of test doubles (tests/repo/README.md) from
# tests/repo/packages.yml with Debian's own tools: dpkg-deb, apt-ftparchive and gpg. The CUDA layout is
# NVIDIA's: one flat repository a distribution, OUTDIR/cuda/<distro>/x86_64/, the key beside the
# packages; the bad variants (unsigned, signed by another key, a key of the wrong fingerprint) are
# under OUTDIR/bad/. The container runtime's repositories (vendor_repositories: in packages.yml) are
# laid out as their vendors' are: NVIDIA's container toolkit flat under
# OUTDIR/libnvidia-container/stable/deb/amd64/, Docker's with dists/ and a pool under
# OUTDIR/docker/linux/debian/; each has its own key. The signing keys are throwaway keys made here, in
# OUTDIR/private (never served, never committed), and kept across rebuilds. Test doubles of NVIDIA's
# cuDNN tar archives (cudnn_archives.py) go to OUTDIR/cudnn/. Rebuilt only when this recipe changes.
# Usage: tests/repo/build.sh [OUTDIR]      (default: .cache/repo of this checkout)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../../.cache/repo}
mkdir -p "$out"
out=$(cd "$out" && pwd)
recipe=$(cat "$here/build.sh" "$here/doubles.py" "$here/packages.yml" "$here/cudnn_archives.py" | sha256sum | cut -c1-16)
if [ "$(cat "$out/.recipe" 2>/dev/null)" = "$recipe" ] && [ -f "$out/cuda/KEY-FINGERPRINT" ] && [ -d "$out/cudnn" ] &&
  [ -f "$out/libnvidia-container/KEY-FINGERPRINT" ] && [ -f "$out/docker/KEY-FINGERPRINT" ]; then
  exit 0
fi

missing=()
command -v apt-ftparchive >/dev/null 2>&1 || missing+=(apt-utils)
command -v gpg >/dev/null 2>&1 || missing+=(gnupg)
command -v dpkg-deb >/dev/null 2>&1 || missing+=(dpkg)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "repo: ${missing[*]} missing: install them (Debian packages) and run again" >&2
    exit 1
  fi
fi

start=$(date +%s)
doubles() { python3 "$here/doubles.py" "$here/packages.yml" "$@"; }

# key HOME [NAME]: the fingerprint of the throwaway key in GnuPG home HOME, made on first use (user id
# NAME, by default the CUDA repositories' key_name).
key() {
  local home=$1 name=${2:-$(doubles release key_name)}
  if ! gpg --homedir "$home" --list-secret-keys --with-colons 2>/dev/null | grep -q '^sec:'; then
    mkdir -p "$home" && chmod 0700 "$home"
    gpg --homedir "$home" --batch --quiet --passphrase '' \
      --quick-gen-key "$name" rsa3072 sign never 2>/dev/null
  fi
  # Its first listing checks the new trust database, and says so on stderr.
  gpg --homedir "$home" --list-secret-keys --with-colons 2>/dev/null | awk -F: '/^fpr:/ { print $10; exit }'
}
mkdir -p "$out/private" && chmod 0700 "$out/private"
good=$(key "$out/private/gnupg")
other=$(key "$out/private/gnupg-other")
if [ "${#good}" != 40 ] || [ "${#other}" != 40 ]; then
  echo "repo: no signing key in $out/private (gpg made none?): remove that directory and run again" >&2
  exit 1
fi
# NVIDIA names its key file after the key id's last 8 hex digits: 3bf863cc.pub.
good_file=$(tr 'A-F' 'a-f' <<<"${good: -8}").pub
other_file=$(tr 'A-F' 'a-f' <<<"${other: -8}").pub

work=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT

# index DIR: the Packages and Release files of the flat repository in DIR, unsigned.
index() {
  (cd "$1" && apt-ftparchive packages . > Packages && gzip -9nk Packages &&
    apt-ftparchive -o APT::FTPArchive::Release::Origin="$(doubles release origin)" \
      -o APT::FTPArchive::Release::Label="$(doubles release label)" release . > Release.new &&
    mv Release.new Release)
}
# sign HOME FINGERPRINT DIR: InRelease and Release.gpg, as apt reads either.
sign() {
  gpg --homedir "$1" --batch --yes --quiet --local-user "$2" --clearsign -o "$3/InRelease" "$3/Release"
  gpg --homedir "$1" --batch --yes --quiet --local-user "$2" --armor --detach-sign -o "$3/Release.gpg" "$3/Release"
}
# copy FROM TO: the packages and the unsigned index of FROM (hard links, no new space).
copy() {
  mkdir -p "$2"
  cp -l "$1"/*.deb "$2"/
  cp "$1"/Packages "$1"/Packages.gz "$1"/Release "$2"/
}

count=0
for distro in $(doubles distros); do
  dir=$work/cuda/$distro/x86_64
  mkdir -p "$dir" "$work/trees/$distro"
  doubles trees "$distro" "$work/trees/$distro" > "$work/trees/$distro.list"
  xargs -a "$work/trees/$distro.list" -P "$(nproc)" -I{} \
    dpkg-deb --root-owner-group -Zgzip --build {} "$dir" >/dev/null
  count=$((count + $(wc -l < "$work/trees/$distro.list")))
  index "$dir"
  sign "$out/private/gnupg" "$good" "$dir"
  gpg --homedir "$out/private/gnupg" --armor --export "$good" > "$dir/$good_file"
  doubles pin "$distro" > "$dir/cuda-$distro.pin"

  copy "$dir" "$work/bad/unsigned/$distro/x86_64"
  copy "$dir" "$work/bad/otherkey/$distro/x86_64"
  sign "$out/private/gnupg-other" "$other" "$work/bad/otherkey/$distro/x86_64"
  gpg --homedir "$out/private/gnupg-other" --armor --export "$other" > "$work/bad/otherkey/$distro/x86_64/$other_file"
  # NVIDIA's index and signature, with another key under the name of NVIDIA's key file.
  copy "$dir" "$work/bad/wrong-fingerprint/$distro/x86_64"
  cp "$dir/InRelease" "$dir/Release.gpg" "$work/bad/wrong-fingerprint/$distro/x86_64/"
  cp "$work/bad/otherkey/$distro/x86_64/$other_file" "$work/bad/wrong-fingerprint/$distro/x86_64/$good_file"
done
echo "$good" > "$work/cuda/KEY-FINGERPRINT"

# real_deb CACHE PACKAGE/SUITE...: Debian's packages unpacked under CACHE/root/<package>/, fetched with
# apt from the machine's own Debian mirror (signatures checked against the machine's Debian keyring), for
# the doubles that carry Debian's build of a vendor's programs (`real_debs:` in packages.yml).
real_debs() {
  local cache=$1 mirror suites list entry
  shift
  [ "$#" -gt 0 ] || return 0
  mirror=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null \
    | grep -oE "https?://[^ ]+" | head -n 1 || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  suites=$(printf '%s\n' "$@" | cut -d/ -f2 | sort -u)
  mkdir -p "$cache/lists/partial" "$cache/archives/partial" "$cache/root"
  list=$cache/sources.list
  for suite in $suites; do echo "deb $mirror $suite main"; done > "$list"
  local apt=(apt-get -qq -o Dir::Etc::SourceList="$list" -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists="$cache/lists"
    -o Dir::Cache="$cache" -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null -o APT::Sandbox::User=root)
  "${apt[@]}" update
  for entry in "$@"; do
    rm -rf "${cache:?}/root/${entry%%/*}" && mkdir -p "$cache/root/${entry%%/*}"
    (cd "$cache/archives" && rm -f "${entry%%/*}"_*.deb && "${apt[@]}" download "$entry")
    dpkg-deb -x "$cache/archives/${entry%%/*}"_*.deb "$cache/root/${entry%%/*}"
  done
}

# The vendors' repositories: Packages in `index`, the .deb files in `pool` (the same directory when flat),
# Release in `release_dir` (paths under `dir`), signed as the vendor signs (`signatures`), the armored key
# at `key_file` and its fingerprint in OUTDIR/<top>/KEY-FINGERPRINT.
tops=()
vendor_count=0
for repo in $(doubles vendors); do
  vendor() { doubles vendor "$repo" "$1"; }
  fingerprint=$(key "$out/private/gnupg-$repo" "$(vendor key_name)")
  if [ "${#fingerprint}" != 40 ]; then
    echo "repo: no signing key in $out/private/gnupg-$repo (gpg made none?): remove that directory and run again" >&2
    exit 1
  fi
  root=$work/$(vendor dir)
  pool=$(vendor pool) index=$(vendor index) release_dir=$(vendor release_dir)
  mkdir -p "$root/$pool" "$root/$index" "$work/trees/$repo"
  mapfile -t debs < <(doubles debs "$repo" | grep .)
  real_debs "$out/.debian" "${debs[@]}"
  doubles trees "$repo" "$work/trees/$repo" "$out/.debian/root" > "$work/trees/$repo.list"
  xargs -a "$work/trees/$repo.list" -P "$(nproc)" -I{} \
    dpkg-deb --root-owner-group -Zgzip --build {} "$root/$pool" >/dev/null
  vendor_count=$((vendor_count + $(wc -l < "$work/trees/$repo.list")))
  (cd "$root" && apt-ftparchive packages "$pool" > "$index/Packages")
  case $(vendor compression) in
    xz) xz -9 -k "$root/$index/Packages" ;;
    *) gzip -9nk "$root/$index/Packages" ;;
  esac
  mapfile -t options < <(vendor release_options)
  (cd "$root/$release_dir" && apt-ftparchive "${options[@]}" release . > Release.new && mv Release.new Release)
  sign "$out/private/gnupg-$repo" "$fingerprint" "$root/$release_dir"
  # NVIDIA's flat repository publishes the clearsigned InRelease only; Release goes with Release.gpg.
  case " $(vendor signatures) " in
    *" Release.gpg "*) ;;
    *) rm -f "$root/$release_dir/Release" "$root/$release_dir/Release.gpg" ;;
  esac
  top=$(vendor top)
  mkdir -p "$work/$(dirname "$(vendor key_file)")"
  gpg --homedir "$out/private/gnupg-$repo" --armor --export "$fingerprint" > "$work/$(vendor key_file)"
  echo "$fingerprint" > "$work/$top/KEY-FINGERPRINT"
  tops+=("$top")
done
echo "$other" > "$work/bad/OTHER-KEY-FINGERPRINT"
echo "This is not an OpenPGP key (dlnode test double of a damaged key file)." > "$work/bad/not-a-key.pub"
python3 "$here/cudnn_archives.py" "$work" >/dev/null
chmod -R a+rX "$work/cuda" "$work/bad" "$work/cudnn" "${tops[@]/#/$work/}"

for tree in cuda bad cudnn "${tops[@]}"; do rm -rf "${out:?}/$tree"; done
for tree in cuda bad cudnn "${tops[@]}"; do mv "$work/$tree" "$out/"; done
echo "$recipe" > "$out/.recipe"
echo "repo: $count test-double packages in $out/cuda ($(doubles distros | tr '\n' ' ')), key $good;" \
  "$vendor_count in $(printf '%s/ ' "${tops[@]/#/$out/}")(own keys);" \
  "$(ls "$out/cudnn" | wc -l) cuDNN archive doubles in $out/cudnn; in $(($(date +%s) - start)) s"
