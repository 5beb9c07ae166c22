#!/usr/bin/env bash
# Compile-fail test: an adapter missing a hook, or with a hook of the wrong signature, must
# fail to compile with a message naming that hook (netpool::check_adapter), not only "no
# known conversion to any_adapter". A correct adapter must compile (the control).
#
#   tests/compile/run.sh SOURCE_ROOT BUILD_ROOT COMPILER [COMPILER_ARGS...]
set -uo pipefail
src=$1
build=$2
shift 2
cxx=("$@")
flags=(-std=c++20 -fsyntax-only -DASIO_NO_DEPRECATED -I"$src/core/include" -I"$build/core/include")
failures=0

expect() {  # CASE MESSAGE
  local out
  if out=$("${cxx[@]}" "${flags[@]}" -D"$1" "$src/tests/compile/bad_adapter.cpp" 2>&1); then
    echo "FAIL $1: compiled, but must not"
    failures=$((failures + 1))
  elif ! grep -qF -- "$2" <<<"$out"; then
    echo "FAIL $1: the error does not say: $2"
    grep -m5 'error' <<<"$out"
    failures=$((failures + 1))
  else
    echo "ok   $1: $(grep -m1 -oF -- "$2" <<<"$out")"
  fi
}

if out=$("${cxx[@]}" "${flags[@]}" "$src/tests/compile/bad_adapter.cpp" 2>&1); then
  echo "ok   control: a complete adapter compiles"
else
  echo "FAIL control: a complete adapter does not compile:"
  echo "$out" | head -20
  failures=$((failures + 1))
fi
expect CASE_MISSING_HEALTH_CHECK 'missing `asio::awaitable<std::error_code> health_check(netpool::connection&)`'
expect CASE_WRONG_HEALTH_CHECK_RESULT 'missing `asio::awaitable<std::error_code> health_check(netpool::connection&)`'
expect CASE_NON_CONST_NEEDS_RESET 'needs_reset must be `bool needs_reset(const netpool::connection&) const`'
exit $((failures > 0))
