#!/usr/bin/env bash
# What a newcomer waits for (BENCHMARKS.md, "Fresh clone"): this checkout's HEAD cloned
# into a temporary directory with an empty cargo target, CARGO_HOME (so crates are
# downloaded again), pip and npm caches; then the wall time of `make demo`, and in a
# second such clone of `make setup` and `make test`. Prints Markdown: the figures and the
# slowest compile units of the demo's build (cargo build --timings).
#
# Usage: tests/support/fresh-clone.sh [demo|test|both]   (about 10 + 35 minutes on 2 cores)
set -euo pipefail
what="${1:-both}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d /tmp/fleet-fresh.XXXXXX)"
trap 'rm -rf "$work"' EXIT

fresh() { # $1: name -> a clone with its own empty caches, exported for the make below
  local dir="$work/$1"
  git clone --quiet "$repo" "$dir/clone"
  mkdir -p "$dir/cargo-home" "$dir/pip" "$dir/npm"
  export CARGO_TARGET_DIR="$dir/target" CARGO_HOME="$dir/cargo-home" \
    PIP_CACHE_DIR="$dir/pip" npm_config_cache="$dir/npm"
  cd "$dir/clone"
}

seconds() { # the wall seconds of "$@", its output to $log
  local start end
  start=$(date +%s)
  "$@" >>"$log" 2>&1 || { echo "failed: $* (see $log)" >&2; exit 1; }
  end=$(date +%s)
  echo $((end - start))
}

mmss() { printf '%d min %02d s' $(($1 / 60)) $(($1 % 60)); }

log="$work/log"
# No advisory database can be fetched here; a newcomer with the network gets one.
export ALLOW_NO_ADVISORIES=1
echo "| command, fresh clone | wall time |"
echo "|---|---|"
if [[ "$what" != test ]]; then
  fresh demo
  demo=$(seconds make demo CARGO_BUILD_FLAGS=--timings)
  echo "| \`make demo\` | $(mmss "$demo") |"
  timings="$CARGO_TARGET_DIR/cargo-timings/cargo-timing.html"
fi
if [[ "$what" != demo ]]; then
  fresh test
  setup=$(seconds make setup)
  tests=$(seconds make test)
  echo "| \`make setup\` then \`make test\` | $(mmss $((setup + tests))) ($(mmss "$setup") + $(mmss "$tests")) |"
fi
if [[ -n "${timings:-}" && -f "$timings" ]]; then
  echo
  echo "Slowest units of the demo's build (\`cargo build --timings\`), seconds of one core:"
  echo
  python3 - "$timings" <<'PY'
import json, re, sys
units = json.loads(re.search(r"const UNIT_DATA = (\[.*?\]);\n", open(sys.argv[1]).read(), re.S).group(1))
total = sum(u["duration"] for u in units)
print("| unit | seconds | share |")
print("|---|---|---|")
for u in sorted(units, key=lambda u: -u["duration"])[:12]:
    name = u["name"] + (" (build script)" if "build-script" in u.get("target", "") else "")
    print(f"| {name} | {u['duration']:.0f} | {100 * u['duration'] / total:.0f} % |")
print(f"| all {len(units)} units | {total:.0f} | |")
PY
fi
