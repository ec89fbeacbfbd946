#!/usr/bin/env bash
# First light on a real GPU (issue 18, item 4): every GPU path of tokenbench once, on one GPU, in
# under 6 minutes, with everything it produced in one archive. See tests/README.md.
#
#   tests/gpu/first_light.sh OUT                  # on a GPU machine (python3 with torch on the PATH)
#   tests/gpu/first_light.sh --cpu-dry-run OUT    # anywhere: every step on the CPU with tiny shapes
#
# Options (or the environment):
#   --cpu-dry-run        FIRST_LIGHT_CPU=1     CPU, tiny shapes; GPU-only checks report 'skipped: no GPU'
#   --skip a,b           FIRST_LIGHT_SKIP      leave these steps out (recorded as skipped)
#   --only a,b           FIRST_LIGHT_ONLY      run only these steps (the others recorded as skipped)
#   --budget-s N         FIRST_LIGHT_BUDGET_S  seconds for the steps (GPU 345, dry run 900)
#                        FIRST_LIGHT_PYTHON    the interpreter (python3)
#                        FIRST_LIGHT_COMPILED_LAYERS  layers of the compiled 8B decode (8; 'full': 32)
# Steps: env timer copy energy llm-eager accept gpu-tests llm-compiled report cost; setup before
# them, the summary and the archive after them, always.
#
# Each step runs in its own process under `timeout`, in its own folder, and never stops the
# others; its exit status goes to steps.tsv. A step's limit is the smaller of its own cap and what
# is left of the budget after a reserve for the steps after it; a step that cannot have its
# minimum is skipped for the budget. OUT receives first_light.tar.gz (everything), summary.txt,
# summary.json and tables.txt: 4 files, at most 16 MiB together. Exit status: 0 when no step
# failed, broke or timed out; 1 otherwise; 2 for bad arguments.
set -u
set -o pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
FL="$HERE/first_light.py"
CPU=${FIRST_LIGHT_CPU:-0}
SKIP=${FIRST_LIGHT_SKIP:-}
ONLY=${FIRST_LIGHT_ONLY:-}
BUDGET=${FIRST_LIGHT_BUDGET_S:-}
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
    --cpu-dry-run) CPU=1 ;;
    --skip) SKIP=${2:?--skip needs a list}; shift ;;
    --only) ONLY=${2:?--only needs a list}; shift ;;
    --budget-s) BUDGET=${2:?--budget-s needs seconds}; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "first_light.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) [ -z "$OUT" ] || { echo "first_light.sh: one OUT folder, got '$OUT' and '$1'" >&2; exit 2; }; OUT=$1 ;;
    esac
    shift
done
[ -n "$OUT" ] || { echo "first_light.sh: give the OUT folder for what it produces" >&2; usage >&2; exit 2; }
[ "$CPU" = 1 ] || CPU=0
STEP_NAMES=",env,timer,copy,energy,llm-eager,accept,gpu-tests,llm-compiled,report,cost,"
for name in ${ONLY//,/ } ${SKIP//,/ }; do
    [[ $STEP_NAMES == *",$name,"* ]] || { echo "first_light.sh: no step '$name' (steps:${STEP_NAMES//,/ })" >&2; exit 2; }
done
[ -n "$BUDGET" ] || { [ "$CPU" = 1 ] && BUDGET=900 || BUDGET=345; }
case "$BUDGET" in '' | *[!0-9]*) echo "first_light.sh: --budget-s takes whole seconds" >&2; exit 2 ;; esac
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd) || exit 2

START=$SECONDS
PY=${FIRST_LIGHT_PYTHON:-python3}
case "$PY" in */*) PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")" ;; esac # steps run in other folders
WORK="$(mktemp -d "${TMPDIR:-/tmp}/first_light.XXXXXX")/first_light"
mkdir -p "$WORK"
export PY REPO FL
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 COLUMNS=160 NO_COLOR=1
MODE_FLAG=()
DEVICE=cuda
IDLE_S=2
if [ "$CPU" = 1 ]; then
    export CUDA_VISIBLE_DEVICES="" # the dry run measures the CPU even on a GPU machine
    MODE_FLAG=(--cpu)
    DEVICE=cpu
    IDLE_S=0
    export TORCHINDUCTOR_COMPILE_THREADS=1 # compile workers starting up would share 2 cores with the timed calls
fi

say() { printf '%s\n' "$*" | tee -a "$WORK/console.txt"; }
stamp() { printf '[%4d s]' $((SECONDS - START)); }
printf 'step\trc\tseconds\tlimit_s\tnote\n' >"$WORK/steps.tsv"
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >>"$WORK/steps.tsv"; }
listed() { [[ ",$2," == *",$1,"* ]]; }
FAILED=0

# run_step NAME CAP_S MIN_S RESERVE_S COMMAND...: COMMAND in WORK/NAME under timeout, output to log.txt
run_step() {
    local name=$1 cap=$2 min=$3 reserve=$4
    shift 4
    local dir="$WORK/$name" left limit t0 rc
    mkdir -p "$dir"
    if { [ -n "$ONLY" ] && ! listed "$name" "$ONLY"; } || listed "$name" "$SKIP"; then
        record "$name" - 0 - "left out (--only/--skip)"
        say "$(stamp) $name: skipped (left out)"
        return 0
    fi
    left=$((BUDGET - (SECONDS - START) - reserve))
    limit=$((cap < left ? cap : left))
    if [ "$limit" -lt "$min" ]; then
        record "$name" - 0 "$limit" "budget: ${left} s left of ${BUDGET} s after a reserve of ${reserve} s; it needs ${min} s"
        say "$(stamp) $name: skipped (budget: ${left} s left, needs ${min} s)"
        return 0
    fi
    say "$(stamp) $name: running (limit ${limit} s)"
    t0=$SECONDS
    (cd "$dir" && exec timeout -k 10 "$limit" "$@") >"$dir/log.txt" 2>&1 </dev/null
    rc=$?
    record "$name" "$rc" $((SECONDS - t0)) "$limit" ""
    case $rc in 0 | 77 | 78) ;; *) FAILED=1 ;; esac
    say "$(stamp) $name: exit $rc after $((SECONDS - t0)) s: $(tail -n 1 "$dir/log.txt" | cut -c1-150)"
}

# --- setup: tokenbench from this checkout (PYTHONPATH), wheels from .whl/ for what python lacks --
setup() {
    local site=/tmp/first_light_site wheels=() te have want
    echo "python: $(command -v "$PY") ($("$PY" -V 2>&1))"
    if "$PY" -c "import pydantic" 2>/dev/null; then
        echo "pydantic is installed: no wheels needed"
    elif compgen -G "$REPO/.whl/*.whl" >/dev/null; then
        for w in "$REPO"/.whl/*.whl; do
            case "$(basename "$w")" in typing_extensions-*) te=$w ;; *) wheels+=("$w") ;; esac
        done
        if [ -n "${te:-}" ]; then # only where the machine's own is older: a newer one is compatible
            want=$(basename "$te" | cut -d- -f2)
            have=$("$PY" -c "import importlib.metadata as m; print(m.version('typing_extensions'))" 2>/dev/null || echo 0)
            if "$PY" -c "import re, sys
v = lambda s: tuple(int(re.match(r'\d*', x).group() or 0) for x in s.split('.')[:3])
sys.exit(0 if v(sys.argv[1]) < v(sys.argv[2]) else 1)" "$have" "$want"; then
                wheels+=("$te")
                echo "typing_extensions $have here, older than $want: installing the wheel"
            fi
        fi
        echo "installing ${#wheels[@]} wheels from .whl/ into $site"
        if ! timeout 120 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target "$site" "${wheels[@]}"; then
            echo "pip failed: unpacking the wheels instead"
            for w in "${wheels[@]}"; do "$PY" -m zipfile -e "$w" "$site"; done
        fi
        export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
    else
        echo "pydantic is missing and there is no .whl/ (tests/gpu/fetch_wheels.sh makes it)"
    fi
}
say "$(stamp) tokenbench first light: $([ "$CPU" = 1 ] && echo 'CPU DRY RUN' || echo GPU), budget ${BUDGET} s, work in $WORK"
mkdir -p "$WORK/setup"
t0=$SECONDS
setup >"$WORK/setup/log.txt" 2>&1
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
(cd "$WORK/setup" && timeout 120 "$PY" "$FL" versions versions.json) >>"$WORK/setup/log.txt" 2>&1
rc=$?
record setup "$rc" $((SECONDS - t0)) 120 ""
[ "$rc" = 0 ] || FAILED=1
say "$(stamp) setup: exit $rc: $(grep -E '^(pydantic|torch|tokenbench|device_name) ' "$WORK/setup/log.txt" | tr -s ' ' | paste -sd ';' -)"

# --- the steps, most telling first; the reserve keeps time for what must follow ----------------
RESERVE=30 # report, cost, summary and archive
run_step env 40 5 "$RESERVE" bash -c '
    date -u; uname -a; "$PY" -V
    if command -v nvidia-smi >/dev/null; then nvidia-smi; nvidia-smi -q; else echo "nvidia-smi: not on this machine"; fi
    "$PY" -m pip list 2>/dev/null | grep -i -E "^(torch|triton|numpy|pandas|pydantic|pydantic.core|typer|rich|nvidia-ml-py|pytest|pytest-benchmark|setuptools|typing.extensions) "
    "$PY" -m bench env; rc=$?
    echo "env: $(nvidia-smi --query-gpu=name,driver_version,power.limit,temperature.gpu,clocks.sm \
        --format=csv,noheader 2>/dev/null || echo "no nvidia-smi")"; exit $rc'
run_step timer 60 20 "$RESERVE" "$PY" "$FL" timer timer.json "${MODE_FLAG[@]}"
run_step copy 45 15 "$RESERVE" "$PY" "$FL" copy copy.json "${MODE_FLAG[@]}"
run_step energy 50 20 "$RESERVE" "$PY" "$FL" energy energy.json "${MODE_FLAG[@]}"
llm_step() { # llm_step KIND CAP: the suite of first_light.py, through tokenbench run
    run_step "llm-$1" "$2" 40 "$RESERVE" bash -c '
        "$PY" "$FL" suite "first_light_$1.toml" --kind "$1" ${2:+"$2"} &&
        exec "$PY" -m bench run --suite "first_light_$1.toml" --device "$3" --out results --idle-s "$4" --seed 0 \
            --no-progress' _ "$1" "${MODE_FLAG[0]:-}" "$DEVICE" "$IDLE_S"
}
llm_step eager 120
run_step accept 100 30 "$RESERVE" "$PY" "$FL" accept "${MODE_FLAG[@]}"
run_step gpu-tests 120 30 "$RESERVE" "$PY" -m pytest -o 'addopts=-ra --strict-markers' -m gpu -p no:cacheprovider \
    -v --durations=15 --junitxml=junit.xml "$REPO/tests/gpu"
llm_step compiled 150 # last: compiling takes what is left, and every record it finishes is kept
run_step report 40 5 10 "$PY" "$FL" report "$WORK"
run_step cost 30 5 5 "$PY" "$FL" cost "$WORK" "${MODE_FLAG[@]}"

# --- summary and archive: always, with a fallback that needs no Python -------------------------
ELAPSED=$((SECONDS - START))
say "$(stamp) summary and archive into $OUT"
(cd "$WORK" && timeout 60 "$PY" "$FL" summary "$WORK" "$OUT" "${MODE_FLAG[@]}" --budget-s "$BUDGET" \
    --elapsed-s "$ELAPSED") >"$WORK/summary.log" 2>&1 || cp "$WORK/steps.tsv" "$OUT/summary.txt"
cat "$OUT/summary.txt"
if ! timeout 120 "$PY" "$FL" pack "$WORK" "$OUT" >"$WORK/pack.log" 2>&1; then
    cat "$WORK/pack.log"
    echo "pack failed or over its limit: a plain tar.gz instead"
    tar -czf "$OUT/first_light.tar.gz" -C "$(dirname "$WORK")" first_light
fi
cat "$WORK/pack.log"
say "$(stamp) done: $([ "$FAILED" = 0 ] && echo 'no step failed' || echo 'some step failed, broke or timed out')"
exit "$FAILED"
