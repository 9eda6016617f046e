#!/usr/bin/env bash
# The hardening check is not a check that cannot fail: an ELF built without
# the flags (no PIE, lazy binding, an executable stack) is refused, one
# built with them passes.
set -euo pipefail
check="$(dirname "$0")/check_elves.sh"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
echo 'int main(void) { return 0; }' > "$dir/main.c"
gcc -no-pie -Wl,-z,lazy -Wl,-z,norelro -z execstack -o "$dir/weak" "$dir/main.c" 2>/dev/null
gcc -fPIE -pie -Wl,-z,relro -Wl,-z,now -Wl,-z,noexecstack -o "$dir/strong" "$dir/main.c"
if out=$(bash "$check" --files "$dir/weak"); then
  echo "FAIL: an unhardened ELF passed the check"; exit 1
fi
for lack in "no PIE" "no RELRO" "lazily" "executable stack"; do
  grep -q "$lack" <<<"$out" || { echo "FAIL: the check did not say '$lack':"; echo "$out"; exit 1; }
done
bash "$check" --files "$dir/strong" || { echo "FAIL: a hardened ELF was refused"; exit 1; }
echo "ok: the check refuses an unhardened ELF ($(wc -l <<<"$out") findings) and passes a hardened one"
