#!/usr/bin/env bash
# Builds the two container images from images/*.Containerfile with buildah, tagged
#   realtime-gateway/gateway:<version>  realtime-gateway/operator:<version>
# (<version> from package.json). Installs buildah from Debian when it is missing. No daemon, no Docker: vfs
# storage and chroot isolation work on a plain root shell, inside a CI container too.
#
# Environment:
#   NODE_IMAGE            base image for both stages (default: the Containerfiles' docker.io/library/node:24-bookworm-slim)
#   RTGW_BUILDAH_ROOT     buildah --root    (default: buildah's own, /var/lib/containers/storage for root)
#   RTGW_BUILDAH_RUNROOT  buildah --runroot (default: buildah's own)
#   IMAGES                which images to build (default: "gateway operator")
#
# Afterwards: `buildah images`, `buildah push realtime-gateway/gateway:<version> docker://REGISTRY/...`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() { echo "build-images: $*" >&2; exit 1; }

if ! command -v buildah >/dev/null 2>&1; then
  echo "build-images: installing buildah (Debian package)" >&2
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends buildah >/dev/null
  command -v buildah >/dev/null 2>&1 || die "buildah is still missing after apt-get install"
fi

version="$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$here/package.json" | head -n1)"
[[ -n "$version" ]] || die "cannot read the version from package.json"
revision="$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)"

buildah=(buildah --storage-driver vfs)
[[ -n "${RTGW_BUILDAH_ROOT:-}" ]] && buildah+=(--root "$RTGW_BUILDAH_ROOT")
[[ -n "${RTGW_BUILDAH_RUNROOT:-}" ]] && buildah+=(--runroot "$RTGW_BUILDAH_RUNROOT")

build_args=(--build-arg "VERSION=$version" --build-arg "REVISION=$revision")
[[ -n "${NODE_IMAGE:-}" ]] && build_args+=(--build-arg "NODE_IMAGE=$NODE_IMAGE")

for name in ${IMAGES:-gateway operator}; do
  file="$here/images/$name.Containerfile"
  [[ -f "$file" ]] || die "no $file"
  tag="realtime-gateway/$name:$version"
  echo "build-images: $tag from ${file#"$here"/}" >&2
  # --layers: unchanged steps (apt, npm ci) come from the cache, so a rebuild after a source change is quick.
  # --pull=false: the base is pulled only when the store lacks it (a local or mirrored base is used as is).
  "${buildah[@]}" bud --isolation chroot --pull=false \
    "${build_args[@]}" -f "$file" -t "$tag" "$here" >&2 \
    || die "buildah bud of $tag failed (see above)"
  echo "$tag"
done
