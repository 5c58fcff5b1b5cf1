#!/usr/bin/env bash
# Builds the control plane the operator's integration tests run against -- kube-apiserver,
# kube-controller-manager, kube-scheduler and etcd from tools/kube, kwok from tools/kube/kwok -- with Go from the
# module proxy, into "$RTGW_CACHE/kube/<version>/". Idempotent: a binary whose build inputs
# (go.mod, go.sum, mains) are unchanged is not rebuilt, so a cached run takes well under a second.
#
# envtest convention: when KUBEBUILDER_ASSETS names a directory holding kube-apiserver and etcd,
# those two are used as they are and not built (test/harness/kube.ts looks there first).
# kube-controller-manager, kube-scheduler and kwok are not part of envtest's assets, so they are
# still built.
#
# Prints the output directory on the last line of stdout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mod="$here/tools/kube"
cache="${RTGW_CACHE:-$HOME/.cache/realtime-gateway}"

die() { echo "build-kube-binaries: $*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || die "Go is not installed: it builds the control plane from the module proxy (Go >= 1.24). KUBEBUILDER_ASSETS (envtest) can supply kube-apiserver and etcd, but kube-controller-manager, kube-scheduler and kwok still need Go"

# The release is whatever tools/kube/go.mod pins; the harness reads the same line.
version="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ { print $2; exit }' "$mod/go.mod")"
[[ -n "$version" ]] || die "cannot read the k8s.io/kubernetes version from $mod/go.mod"
out="$cache/kube/$version"
mkdir -p "$out"

ldflags="-s -w \
 -X k8s.io/component-base/version.gitVersion=$version \
 -X k8s.io/component-base/version.gitMajor=$(cut -d. -f1 <<<"${version#v}") \
 -X k8s.io/component-base/version.gitMinor=$(cut -d. -f2 <<<"${version#v}") \
 -X k8s.io/component-base/version.gitTreeState=clean \
 -X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z"

# GOFLAGS from the caller's environment (e.g. -mod=vendor) would break a module-proxy build.
export GOFLAGS=-buildvcs=false CGO_ENABLED=0

# stamp_of MODULE_DIR [MAIN_DIR] -> hash of everything that decides a binary built from there.
stamp_of() { (cd "$1" && cat go.mod go.sum ${2:+$2/*.go} && uname -m) | sha256sum | cut -c1-16; }

# needs BIN STAMP -> true when BIN has to be (re)built.
needs() { [[ ! -x "$out/$1" || "$(cat "$out/.$1.stamp" 2>/dev/null)" != "$2" ]]; }

from_assets() {
  [[ -n "${KUBEBUILDER_ASSETS:-}" && -x "$KUBEBUILDER_ASSETS/$1" ]]
}

kube_targets=()
for bin in kube-apiserver etcd kube-controller-manager kube-scheduler; do
  if [[ "$bin" == kube-apiserver || "$bin" == etcd ]] && from_assets "$bin"; then
    echo "build-kube-binaries: $bin from KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS" >&2
    continue
  fi
  needs "$bin" "$(stamp_of "$mod" "cmd/$bin")" && kube_targets+=("./cmd/$bin")
done
if ((${#kube_targets[@]})); then
  echo "build-kube-binaries: building ${kube_targets[*]} ($version) into $out; the first build downloads k8s.io/kubernetes and takes several minutes" >&2
  (cd "$mod" && go build -p 2 -trimpath -ldflags="$ldflags" -o "$out/" "${kube_targets[@]}") \
    || die "go build of ${kube_targets[*]} failed (see above); check network access to the Go module proxy ($(go env GOPROXY))"
  for t in "${kube_targets[@]}"; do stamp_of "$mod" "${t#./}" >"$out/.${t#./cmd/}.stamp"; done
fi

kwok_stamp="$(stamp_of "$mod/kwok")"
if needs kwok "$kwok_stamp"; then
  echo "build-kube-binaries: building kwok into $out" >&2
  (cd "$mod/kwok" && go build -trimpath -ldflags="-s -w" -o "$out/kwok" sigs.k8s.io/kwok/cmd/kwok) \
    || die "go build of kwok failed (see above)"
  echo "$kwok_stamp" >"$out/.kwok.stamp"
fi

for bin in kube-apiserver etcd; do
  from_assets "$bin" || [[ -x "$out/$bin" ]] || die "$bin missing from $out after the build"
done
echo "$out"
