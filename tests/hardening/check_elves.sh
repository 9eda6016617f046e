#!/usr/bin/env bash
# Checks that every ELF the build made is hardened, with readelf (binutils):
#   - position independent (an executable is PIE: type DYN with the PIE flag),
#   - full RELRO (a GNU_RELRO segment and BIND_NOW),
#   - a non-executable stack (GNU_STACK without E),
# and that every compile command had the stack protector and, outside Debug,
# fortified libc calls (compile_commands.json; a canary or a _chk call only
# shows in an ELF whose code needed one).
# Usage: check_elves.sh BUILD_DIR            (every ELF under bin/, lib/, tests/)
#        check_elves.sh --files ELF...       (those ELFs only; no compile check)
# Exits 1 naming each ELF and what it lacks.
set -uo pipefail
failed=0
lacks() { echo "not hardened: $1: $2"; failed=1; }

check_elf() {
  local f=$1 header dynamic segments
  header=$(readelf -hW "$f" 2>/dev/null) || { lacks "$f" "readelf cannot read it"; return; }
  dynamic=$(readelf -dW "$f" 2>/dev/null)
  segments=$(readelf -lW "$f" 2>/dev/null)
  grep -q 'Type:[[:space:]]*DYN' <<<"$header" || lacks "$f" "not position independent (no PIE)"
  if grep -q '(INTERP)\|program interpreter' <<<"$segments"; then   # an executable
    grep -q 'FLAGS_1.*PIE' <<<"$dynamic" || lacks "$f" "an executable without the PIE flag"
  fi
  grep -q 'GNU_RELRO' <<<"$segments" || lacks "$f" "no RELRO segment (-z relro)"
  grep -Eq 'BIND_NOW|FLAGS_1.*[[:space:]]NOW' <<<"$dynamic" || lacks "$f" "symbols bound lazily (no -z now: partial RELRO)"
  local stack
  stack=$(grep 'GNU_STACK' <<<"$segments")
  if [ -z "$stack" ]; then lacks "$f" "no GNU_STACK segment (the stack may be executable)"
  elif grep -q 'RWE' <<<"$stack"; then lacks "$f" "an executable stack"
  fi
}

is_elf() { [ -f "$1" ] && [ "$(head -c 4 "$1" 2>/dev/null | od -An -c | tr -d ' ')" = '177ELF' ]; }

if [ "${1:-}" = "--files" ]; then
  shift
  for f in "$@"; do check_elf "$f"; done
  exit $failed
fi

build=${1:?usage: check_elves.sh BUILD_DIR}
count=0
while IFS= read -r -d '' f; do
  is_elf "$f" || continue
  readelf -hW "$f" 2>/dev/null | grep -q 'Type:[[:space:]]*\(DYN\|EXEC\)' || continue   # not object files
  check_elf "$f"
  count=$((count + 1))
done < <(find "$build/bin" "$build/lib" "$build/tests" -type f -not -path '*/CMakeFiles/*' -print0 2>/dev/null)
[ "$count" -gt 10 ] || lacks "$build" "only $count ELF files found: is this a build directory?"

commands="$build/compile_commands.json"
if [ ! -f "$commands" ]; then
  lacks "$commands" "missing (CMAKE_EXPORT_COMPILE_COMMANDS)"
else
  # One "command" per compiled file.
  total=$(grep -c '"command":' "$commands")
  protected=$(grep '"command":' "$commands" | grep -c -- '-fstack-protector-strong')
  fortified=$(grep '"command":' "$commands" | grep -c -- '-D_FORTIFY_SOURCE=2')
  [ "$protected" -eq "$total" ] || lacks "$commands" "$((total - protected)) of $total files compiled without -fstack-protector-strong"
  [ "$fortified" -eq "$total" ] || lacks "$commands" "$((total - fortified)) of $total files compiled without -D_FORTIFY_SOURCE=2"
fi
[ $failed -eq 0 ] && echo "hardened: $count ELF files (PIE, full RELRO, no executable stack); every file compiled with the stack protector and fortified calls"
exit $failed
