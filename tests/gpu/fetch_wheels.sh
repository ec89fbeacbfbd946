#!/usr/bin/env bash
# Download the wheels that the GPU machine lacks into .whl/ at the repository root, for
# tests/gpu/first_light.sh to install there without a network: pydantic and its own dependencies
# (pydantic-core, annotated-types, typing-inspection), for CPython 3.12 on manylinux x86-64. Also
# typing-extensions, which pydantic 2.14 needs at 4.16 or newer: first_light.sh installs it only
# where the machine's own is older (a newer typing_extensions is backward compatible).
#
#   tests/gpu/fetch_wheels.sh            # versions as installed in .venv (else the pins below)
#   PYTHON=/path/to/python tests/gpu/fetch_wheels.sh
#
# .whl/ must be ignored by git (it travels to the device machine as a carried path, not as a
# tracked file). Run on a machine with access to PyPI.
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTHON=${PYTHON:-.venv/bin/python}
PACKAGES=(pydantic pydantic-core annotated-types typing-inspection typing-extensions)
# Used where $PYTHON has no such package installed: the versions the project was tested with.
declare -A PINNED=([pydantic]=2.14.4 [pydantic-core]=2.50.5 [annotated-types]=0.8.0 [typing-inspection]=0.4.5
    [typing-extensions]=4.16.0)

specs=()
for name in "${PACKAGES[@]}"; do
    version=$("$PYTHON" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name" 2>/dev/null ||
        echo "${PINNED[$name]}")
    specs+=("$name==$version")
done
echo "fetching ${specs[*]} (cp312, manylinux x86-64) into .whl/"

mkdir -p .whl
rm -f .whl/*.whl # one version of each: two would stop the install on the device
# pip matches a manylinux_2_N tag exactly: name the common ones; pure wheels (py3-none-any) match any.
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --abi cp312 --abi abi3 --abi none \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any \
    -d .whl "${specs[@]}"
ls -l .whl/
n=$(find .whl -maxdepth 1 -type f -name '*.whl' | wc -l)
if [ "$n" -ne "${#PACKAGES[@]}" ]; then
    echo "fetch_wheels: expected ${#PACKAGES[@]} wheels, found $n" >&2
    exit 1
fi
