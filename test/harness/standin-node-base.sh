#!/usr/bin/env bash
# Makes a stand-in for docker.io/library/node:24-bookworm-slim in a buildah store, for machines that reach no
# container registry (the image tests, CI): a debootstrapped bookworm (variant minbase) plus the Node 24 binary
# of the root `node` devDependency at /usr/local/bin/node, npm from the npm registry at
# /usr/local/lib/node_modules/npm, and the `node` user (1000:1000) -- the parts of the official image the
# Containerfiles use. Tagged exactly like the official image, so they build unchanged.
#
# Cached under "$RTGW_CACHE/images/": the debootstrapped rootfs as a tarball (minutes to make, made once) and
# the image in the buildah store there; a run whose stamp (Node, npm, this script) is unchanged does nothing.
#
# Environment: RTGW_CACHE, RTGW_BUILDAH_ROOT / RTGW_BUILDAH_RUNROOT (default: under $RTGW_CACHE/images),
# DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="${RTGW_CACHE:-$HOME/.cache/realtime-gateway}/images"
root="${RTGW_BUILDAH_ROOT:-$cache/storage}"
runroot="${RTGW_BUILDAH_RUNROOT:-$cache/runroot}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
tag="docker.io/library/node:24-bookworm-slim"
die() { echo "standin-node-base: $*" >&2; exit 1; }
mkdir -p "$cache"

need=()
command -v buildah >/dev/null 2>&1 || need+=(buildah)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if ((${#need[@]})); then
  echo "standin-node-base: installing ${need[*]} (Debian packages)" >&2
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

node_bin="$here/node_modules/node/bin/node"
[[ -x "$node_bin" ]] || die "$node_bin is missing: run npm ci first (the root devDependency \`node\` ships it)"
node_version="$("$node_bin" --version)"
[[ "$node_version" == v24.* ]] || die "the node devDependency is $node_version, the base stands in for Node 24"
# npm as the host runs it (it wrote the lockfile); the tarball comes from the npm registry.
npm_version="$(npm --version 2>/dev/null)"
# Where the registry is reached through a TLS-intercepting proxy, the host trusts its CA (NODE_EXTRA_CA_CERTS
# or npm's cafile); the stand-in's npm gets the same bundle through its global npmrc, as a base image of such a
# site would. It stays out of ENV, so images built on it inherit nothing at run time.
ca_file="${NODE_EXTRA_CA_CERTS:-}"
[[ -n "$ca_file" ]] || ca_file="$(npm config get cafile 2>/dev/null || true)"
[[ -s "$ca_file" ]] || ca_file=""
ca_hash="$( [[ -n "$ca_file" ]] && sha256sum "$ca_file" | cut -c1-16 || echo none)"
stamp="bookworm-minbase node=$node_version npm=$npm_version ca=$ca_hash script=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)"

buildah=(buildah --storage-driver vfs --root "$root" --runroot "$runroot")
if [[ "$(cat "$cache/standin.stamp" 2>/dev/null)" == "$stamp" ]] && "${buildah[@]}" inspect --type image "$tag" >/dev/null 2>&1; then
  exit 0
fi

rootfs_tar="$cache/bookworm-minbase.tar"
if [[ ! -s "$rootfs_tar" ]]; then
  echo "standin-node-base: debootstrap bookworm (minbase) from $mirror, once; takes a few minutes" >&2
  work="$(mktemp -d "$cache/debootstrap.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
  rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
  tar -C "$work/rootfs" --numeric-owner -cf "$rootfs_tar.tmp" .
  mv "$rootfs_tar.tmp" "$rootfs_tar"
  rm -rf "$work"
  trap - EXIT
fi

npm_tgz="$cache/npm-$npm_version.tgz"
if [[ ! -s "$npm_tgz" ]]; then
  (cd "$cache" && npm pack --silent "npm@$npm_version" >/dev/null) || die "npm pack npm@$npm_version failed"
fi

echo "standin-node-base: assembling $tag (Node $node_version, npm $npm_version)" >&2
ctr="$("${buildah[@]}" from --name "rtgw-standin-$$" scratch)"
trap '"${buildah[@]}" rm "$ctr" >/dev/null 2>&1 || true' EXIT
mnt="$("${buildah[@]}" mount "$ctr")"
tar -C "$mnt" --numeric-owner -xf "$rootfs_tar"
install -m 0755 "$node_bin" "$mnt/usr/local/bin/node"
mkdir -p "$mnt/usr/local/lib/node_modules/npm"
tar -C "$mnt/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner -xzf "$npm_tgz"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$mnt/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$mnt/usr/local/bin/npx"
if [[ -n "$ca_file" ]]; then
  install -D -m 0644 "$ca_file" "$mnt/usr/local/etc/ssl/registry-ca.pem"
  echo "cafile=/usr/local/etc/ssl/registry-ca.pem" >"$mnt/usr/local/etc/npmrc"
fi
# The official image's `node` user and group.
echo 'node:x:1000:1000::/home/node:/bin/bash' >>"$mnt/etc/passwd"
echo 'node:x:1000:' >>"$mnt/etc/group"
echo 'node:*:19000:0:99999:7:::' >>"$mnt/etc/shadow"
install -d -o 1000 -g 1000 "$mnt/home/node"
"${buildah[@]}" umount "$ctr" >/dev/null
"${buildah[@]}" config \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env "NODE_VERSION=${node_version#v}" \
  --cmd '["node"]' "$ctr"
"${buildah[@]}" commit --rm -q "$ctr" "$tag" >/dev/null
trap - EXIT
echo "$stamp" >"$cache/standin.stamp"
echo "standin-node-base: $tag ready in $root" >&2
