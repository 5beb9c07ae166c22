#!/usr/bin/env bash
# Install test: `meson install` a build tree into a staging directory, then build and run
# an out-of-tree consumer (consumer/main.cpp) with nothing but what was installed, found
# through pkg-config (`pkg-config --cflags --libs netpool netpool-echo`), and again through
# the CMake package (cmake_consumer/: find_package(netpool COMPONENTS echo)). Then the same
# program once more with netpool as a Meson subproject built from source (meson_consumer/:
# dependency('netpool-echo', fallback : ...)), from a clean `git archive` of HEAD.
#
#   tests/install/run.sh BUILD_DIR
#
# Takes about as long as compiling netpool's core library and echo protocol once (the
# subproject consumer builds them from source), NETPOOL_JOBS (default: nproc) at a time:
# 76 s in all with NETPOOL_JOBS=1 on a shared 2-core machine, 65 s of it the Meson consumer.
#
# Checks on the way: the .pc files are installed and force no -D on consumers, their -I/-L point into the staging
# area (PKG_CONFIG_SYSROOT_DIR), the public headers the consumer includes are there, and
# the consumer links against the installed static libraries, not the build tree's.
# Exit status 0 on success.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)

stage=$(mktemp -d "${TMPDIR:-/tmp}/netpool-install.XXXXXX")
trap 'rm -rf "$stage"' EXIT

step() { echo "install test: $*"; }
die() { echo "install test: FAILED: $*" >&2; exit 1; }

step "meson install -C $build --destdir <staging>"
meson install -C "$build" --destdir "$stage/root" --quiet || die "meson install failed"

# The prefix and libdir the build tree was configured with.
read -r prefix libdir < <(meson introspect "$build" --buildoptions | python3 -c '
import json, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
print(o["prefix"], o["libdir"])
')
[[ $libdir = /* ]] || libdir=$prefix/$libdir
pcdir=$stage/root$libdir/pkgconfig
for pc in netpool netpool-echo netpool-smtp netpool-imap netpool-redis; do
  [[ -f $pcdir/$pc.pc ]] || die "$pcdir/$pc.pc was not installed"
done
for h in netpool/pool.hpp netpool/lease.hpp netpool/registry.hpp netpool/config.hpp \
         netpool/kit.hpp netpool/kit/session.hpp netpool/keyed_client.hpp netpool/base64.hpp \
         netpool/echo/adapter.hpp netpool/echo/server.hpp netpool/smtp/mailer.hpp netpool/imap/client.hpp netpool/redis/client.hpp; do
  [[ -f $stage/root$prefix/include/$h ]] || die "header $h was not installed under $prefix/include"
done

# The implementation's headers stay in the source tree (core/meson.build).
[[ ! -e $stage/root$prefix/include/netpool/detail ]] || die "include/netpool/detail/ was installed"

# The sysroot prefixes every -I and -L with the staging directory; the system's own .pc
# files (openssl, nlohmann_json) stay reachable through the default search path.
export PKG_CONFIG_SYSROOT_DIR=$stage/root
export PKG_CONFIG_PATH=$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
pkg-config --exists --print-errors netpool netpool-echo || die "pkg-config cannot resolve netpool netpool-echo"
cflags=$(pkg-config --cflags netpool netpool-echo)
# What a user types: no --static although the libraries are static archives, so the
# public Requires must carry everything they need (OpenSSL, in a build with TLS) for this to link.
libs=$(pkg-config --libs netpool netpool-echo)
step "pkg-config --cflags: $cflags"
step "pkg-config --libs: $libs"
case " $cflags " in
  *" -I$stage/root$prefix/include "*) ;;
  *) die "--cflags lacks -I for the installed headers ($prefix/include)" ;;
esac
case " $libs " in
  *" -L$stage/root$libdir "*) ;;
  *) die "--libs lacks -L for the installed libraries ($libdir)" ;;
esac
[[ $cflags$libs != *"$build"* ]] || die "pkg-config output points into the build tree"
# netpool's own build keeps off Asio's deprecated names; a consumer's may use them.
all_cflags=$(pkg-config --cflags netpool netpool-echo netpool-smtp netpool-imap netpool-redis)
[[ $all_cflags != *-D* ]] || die "pkg-config --cflags forces a definition on consumers: $all_cflags"

step "building the consumer"
# shellcheck disable=SC2086  # word splitting of pkg-config output is intended
c++ -std=c++20 -o "$stage/consumer" "$here/consumer/main.cpp" $cflags $libs || die "the consumer did not build"

# Every header a consumer's compilation reads from the staged tree: the consumer's own, and
# every protocol's public headers besides; none under detail/ (the installed headers must
# stand on their own). Captured first: `grep -q` at the end of a pipe under pipefail can
# make the producer die of SIGPIPE and the check pass by mistake.
printf '#include <netpool/netpool.hpp>\n#include <netpool/kit.hpp>\n#include <netpool/keyed_client.hpp>\n#include <netpool/smtp/mailer.hpp>\n#include <netpool/imap/client.hpp>\n#include <netpool/redis/client.hpp>\n' \
  >"$stage/all_headers.cpp"
deps=""
for src in "$here/consumer/main.cpp" "$stage/all_headers.cpp"; do
  # shellcheck disable=SC2086  # word splitting of pkg-config output is intended
  out=$(c++ -std=c++20 -M "$src" $all_cflags) || die "c++ -M $src failed"
  deps+=$(tr ' \\' '\n\n' <<<"$out")$'\n'
done
staged=$(grep -c -- "^$stage/root$prefix/include/netpool/" <<<"$deps" || true)
[[ $staged -gt 0 ]] || die "the consumers read no header from the staged include directory"
detail_read=$(grep -- "/netpool/detail/" <<<"$deps" || true)
[[ -z $detail_read ]] || die "a consumer includes a detail/ header: $(head -3 <<<"$detail_read")"
step "the consumers read $staged installed netpool headers, none under detail/"

step "running the consumer"
timeout 60 "$stage/consumer" || die "the consumer failed"

# The same program through the CMake package: find_package(netpool COMPONENTS echo) and the
# imported target netpool::echo, from the staging area only (CMAKE_PREFIX_PATH), with the
# system's own packages (OpenSSL, nlohmann_json, Threads) found as usual.
cmakedir=$stage/root$libdir/cmake/netpool
for f in netpoolConfig.cmake netpoolConfigVersion.cmake; do
  [[ -f $cmakedir/$f ]] || die "$cmakedir/$f was not installed"
done
if command -v cmake >/dev/null 2>&1; then
  step "building the CMake consumer (find_package(netpool))"
  cmake -S "$here/cmake_consumer" -B "$stage/cmake-build" -DCMAKE_PREFIX_PATH="$stage/root$prefix" \
    -DCMAKE_BUILD_TYPE=Release >"$stage/cmake.log" 2>&1 || { cat "$stage/cmake.log" >&2; die "cmake could not configure the consumer"; }
  cmake --build "$stage/cmake-build" >>"$stage/cmake.log" 2>&1 || { cat "$stage/cmake.log" >&2; die "the CMake consumer did not build"; }
  grep -q -- "$stage/root" "$stage/cmake-build/CMakeCache.txt" || die "the CMake consumer did not use the staged package"
  # An unknown component is refused by name.
  mkdir -p "$stage/cmake-bad"
  printf 'cmake_minimum_required(VERSION 3.16)\nproject(bad CXX)\nfind_package(netpool REQUIRED COMPONENTS nosuch)\n' \
    >"$stage/cmake-bad/CMakeLists.txt"
  if cmake -S "$stage/cmake-bad" -B "$stage/cmake-bad/b" -DCMAKE_PREFIX_PATH="$stage/root$prefix" >"$stage/bad.log" 2>&1; then
    die "find_package(netpool COMPONENTS nosuch) succeeded"
  fi
  grep -q "component 'nosuch' is not installed" "$stage/bad.log" || { cat "$stage/bad.log" >&2; die "no clear message for an unknown component"; }
  step "running the CMake consumer"
  timeout 60 "$stage/cmake-build/consumer" || die "the CMake consumer failed"
else
  die "cmake is not installed (scripts/setup installs it)"
fi

# The same program with netpool as a Meson subproject: a clean tree of HEAD (git archive:
# nothing of the working tree, its changes or its build directories) as the consumer's
# subprojects/netpool; the fallback forced (an installed netpool would otherwise be found
# first); netpool's tests, examples, benchmarks and command switched off by the consumer's
# default_options, so no CLI11 or doctest is needed. Only the consumer's target is built:
# netpool's core and echo libraries, from source.
src=$(cd "$here/../.." && pwd)
git -C "$src" rev-parse --verify -q HEAD >/dev/null || die "$src is not a git checkout: no HEAD to archive for the Meson consumer"
mc=$stage/meson-consumer
mkdir -p "$mc/subprojects/netpool"
cp "$here/meson_consumer/meson.build" "$here/consumer/main.cpp" "$mc/"
git -C "$src" archive --format=tar HEAD | tar -x -C "$mc/subprojects/netpool" || die "git archive HEAD of $src failed"
step "building the Meson consumer (netpool $(git -C "$src" rev-parse --short HEAD) as a subproject)"
t0=$SECONDS
(
  unset PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
  meson setup "$mc/build" "$mc" --force-fallback-for=netpool-echo >"$stage/meson.log" 2>&1 &&
    meson compile -C "$mc/build" -j "${NETPOOL_JOBS:-$(nproc 2>/dev/null || echo 2)}" consumer >>"$stage/meson.log" 2>&1
) || { tail -40 "$stage/meson.log" >&2; die "the Meson consumer did not build"; }
[[ -f $mc/build/subprojects/netpool/core/libnetpool.a ]] || die "the Meson consumer did not build netpool as a subproject"
# What the subproject defines: its libraries only; no test, no executable (the netpool
# command, test programs), no tools library (the command's).
defined=$(meson introspect "$mc/build" --targets --tests | python3 -c '
import json, sys
d = json.load(sys.stdin)
sub = [t for t in d["targets"] if "/subprojects/netpool/" in t["defined_in"]]
extra = [t["name"] for t in sub if t["type"] != "static library" or t["name"] in ("netpool_tools", "doctest_main")]
if d["tests"] or extra:
    print("tests %s, targets %s" % ([t["name"] for t in d["tests"]], extra))
    sys.exit(1)
print(" ".join(sorted(t["name"] for t in sub)))
') || die "the subproject defines more than its libraries despite its default_options: $defined"
step "the subproject defines: $defined"
step "running the Meson consumer (built in $((SECONDS - t0)) s)"
timeout 60 "$mc/build/consumer" || die "the Meson consumer failed"
step "ok"
