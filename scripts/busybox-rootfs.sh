#!/usr/bin/env bash
# Writes a small busybox root filesystem as a tar, from Debian's busybox-static package, so images
# can be made without internet access:
#   scripts/busybox-rootfs.sh busybox.tar && minato import busybox.tar busybox:latest
# The tar is reproducible: sorted entries, root ownership, fixed mtimes.
set -euo pipefail
out=${1:?usage: busybox-rootfs.sh OUT.tar}

busybox=/bin/busybox
# A here-string, not a pipe: under pipefail, grep -q exiting early can fail the pipeline with SIGPIPE.
if ! [ -x "$busybox" ] || ! "$busybox" --list >/dev/null 2>&1 || ! grep -q "not a dynamic" <<<"$(ldd "$busybox" 2>&1)"; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "busybox-rootfs: needs the busybox-static package: sudo apt-get install -y busybox-static" >&2
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
chmod 755 "$root"
mkdir -p "$root"/{bin,etc,root,tmp,var/run,proc,sys,dev}
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$root" -cf "$out" .
