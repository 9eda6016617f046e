#!/usr/bin/env bash
# The .deb as a user gets it: cpack builds it from the build tree, it is
# unpacked into a scratch root (dpkg -x, no root needed), and a plugin is
# built against the SDK inside it, with CMake and with pkg-config, and run by
# the sluice inside it.
set -euo pipefail
build_dir=$1 source_dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$build_dir" && cpack -G DEB -B "$work/pkg" > "$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; exit 1; }
deb=$(ls "$work"/pkg/*.deb)
[ "$(dpkg-deb --field "$deb" Package)" = sluice ] || { echo "$deb: not the sluice package"; exit 1; }
dpkg -x "$deb" "$work/root"
usr="$work/root/usr"
for f in bin/sluice bin/sluice-worker include/sluice/plugin.h share/doc/sluice-sdk/plugin-guide.md; do
  [ -e "$usr/$f" ] || { echo "the .deb lacks $f"; exit 1; }
done
version=$("$usr/bin/sluice" --version) || { echo "the packaged sluice does not run"; exit 1; }
case "$version" in *"plugin ABI"*) ;; *) echo "unexpected version line: $version"; exit 1 ;; esac

# CMake, against the unpacked package.
cmake -S "$source_dir/tests/sdk/external_plugin" -B "$work/ext" -DCMAKE_PREFIX_PATH="$usr" > /dev/null
cmake --build "$work/ext" > /dev/null
# pkg-config, against the unpacked package.
pc=$(dirname "$(find "$usr" -name sluice-sdk.pc -print -quit)")
mkdir -p "$work/c"
cc -std=c99 -shared -fPIC -o "$work/c/c_tag.so" "$source_dir/tests/plugins/c_tag.c" $(PKG_CONFIG_PATH=$pc pkg-config --cflags sluice-sdk)
cat > "$work/m.json" <<JSON
{"plugin_dirs": ["$work/ext", "$work/c"], "stages": [
  {"id": "in", "kind": "extractor", "plugin": "generate", "config": {"count": 5}},
  {"id": "hi", "kind": "transformer", "plugin": "hello"},
  {"id": "tag", "kind": "transformer", "plugin": "c_tag", "isolation": "process"},
  {"id": "out", "kind": "loader", "plugin": "file", "config": {"path": "out.ndjson"}}]}
JSON
"$usr/bin/sluice" run "$work/m.json" 2> "$work/err" || { cat "$work/err"; exit 1; }
lines=$(grep -c '"hello":"world","tagged_by":"from-the-schema"}$' "$work/out.ndjson" || true)
[ "$lines" = 5 ] || { echo "expected 5 records through both plugins, got $lines"; cat "$work/out.ndjson"; exit 1; }
# The service: a unit template systemd accepts, with the hardening it
# promises, the user it runs as (created by the postinst) and the env example.
for f in lib/systemd/system/sluice@.service lib/sysusers.d/sluice.conf share/doc/sluice/examples/sluice.env share/doc/sluice/README.md \
         share/doc/sluice/sluice-dashboard.json share/doc/sluice/runbook.md; do
  [ -e "$usr/$f" ] || { echo "the .deb lacks /usr/$f"; exit 1; }
done
unit="$usr/lib/systemd/system/sluice@.service"
for key in ExecReload=/bin/kill.-HUP NoNewPrivileges=yes ProtectSystem=strict User=sluice ProtectHome=yes CapabilityBoundingSet=; do
  grep -q "^$key" "$unit" || { echo "sluice@.service lacks $key"; exit 1; }
done
dpkg-deb --ctrl-tarfile "$deb" | tar -t | grep -q postinst || { echo "the .deb has no postinst (the sluice user)"; exit 1; }
if command -v systemd-analyze > /dev/null; then
  sed "s|/usr/bin/sluice|$usr/bin/sluice|g" "$unit" > "$work/sluice@orders.service"
  problems=$(systemd-analyze verify "$work/sluice@orders.service" 2>&1 || true)
  [ -z "$problems" ] || { echo "systemd-analyze verify sluice@.service: $problems"; exit 1; }
fi

echo "$(basename "$deb"): unpacked, two plugins built against it (CMake, pkg-config) and run by its sluice (one isolated); its service unit verified"
