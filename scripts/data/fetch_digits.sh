#!/usr/bin/env bash
# Fetches scikit-learn's digits data set (1797 8x8 grayscale images, pixel values 0..16,
# labels 0..9) for crates/ingot-nn/examples/digits.rs, without committing it: the file is
# copied out of a scikit-learn wheel downloaded with pip into a temporary directory and
# written to data/digits/digits.csv.gz (data/ is git-ignored).
#
# Usage: scripts/data/fetch_digits.sh [--force] [--wheel PATH]
#   --force       fetch again even if the file is already there
#   --wheel PATH  take the data from a scikit-learn wheel already on disk (no download)
# Environment: PYTHON (default python3), PIP (default "$PYTHON -m pip").
set -euo pipefail

die() {
    echo "fetch_digits: error: $*" >&2
    exit 1
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dest_dir="$root/data/digits"
dest="$dest_dir/digits.csv.gz"
member="sklearn/datasets/data/digits.csv.gz"
python="${PYTHON:-python3}"
force=0
wheel=""

while [[ $# -gt 0 ]]; do
    case "$1" in
        --force) force=1 ;;
        --wheel)
            [[ $# -ge 2 ]] || die "--wheel needs a path"
            wheel="$2"
            shift
            ;;
        -h | --help)
            sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *) die "unknown argument '$1' (try --help)" ;;
    esac
    shift
done

command -v "$python" >/dev/null 2>&1 || die "'$python' not found: python 3 is needed (set PYTHON=...)"

# Checks that a digits.csv.gz holds 1797 rows of 64 pixels in 0..16 and a label in 0..9.
check() {
    "$python" - "$1" <<'PY'
import gzip, sys
path = sys.argv[1]
try:
    lines = gzip.decompress(open(path, "rb").read()).decode("ascii").splitlines()
except Exception as e:
    sys.exit(f"{path}: not a readable gzip CSV: {e}")
rows = [l for l in lines if l.strip()]
if len(rows) != 1797:
    sys.exit(f"{path}: expected 1797 rows, found {len(rows)}")
for i, l in enumerate(rows, 1):
    v = [float(x) for x in l.split(",")]
    if len(v) != 65 or not all(0 <= x <= 16 for x in v[:64]) or v[64] not in range(10):
        sys.exit(f"{path}: line {i} is not 64 pixels in 0..16 and a label in 0..9")
PY
}

if [[ -f "$dest" && $force -eq 0 ]]; then
    if check "$dest"; then
        echo "fetch_digits: $dest is already there (use --force to fetch again)"
        exit 0
    fi
    echo "fetch_digits: $dest is damaged; fetching it again" >&2
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

if [[ -z "$wheel" ]]; then
    pip_cmd=(${PIP:-"$python" -m pip})
    echo "fetch_digits: downloading a scikit-learn wheel with pip (about 10 MB) into $tmp"
    if ! "${pip_cmd[@]}" download --no-deps --only-binary=:all: --disable-pip-version-check \
        --dest "$tmp" scikit-learn >"$tmp/pip.log" 2>&1; then
        cat "$tmp/pip.log" >&2
        die "pip could not download scikit-learn (see above); with a wheel on disk, pass --wheel PATH"
    fi
    shopt -s nullglob
    wheels=("$tmp"/scikit_learn-*.whl)
    shopt -u nullglob
    [[ ${#wheels[@]} -ge 1 ]] || die "pip ran but left no scikit_learn-*.whl in $tmp"
    wheel="${wheels[0]}"
fi
[[ -f "$wheel" ]] || die "wheel '$wheel' does not exist"

mkdir -p "$dest_dir"
"$python" - "$wheel" "$member" "$tmp/digits.csv.gz" <<'PY' || die "could not extract $member from $wheel"
import sys, zipfile
wheel, member, out = sys.argv[1:]
try:
    with zipfile.ZipFile(wheel) as z:
        data = z.read(member)
except KeyError:
    sys.exit(f"{wheel} has no {member}")
except zipfile.BadZipFile as e:
    sys.exit(f"{wheel} is not a zip file: {e}")
with open(out, "wb") as f:
    f.write(data)
PY
check "$tmp/digits.csv.gz" || die "the extracted file does not look like the digits data"
mv -f "$tmp/digits.csv.gz" "$dest"
echo "fetch_digits: wrote $dest (from $(basename "$wheel"))"
