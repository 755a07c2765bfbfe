#!/usr/bin/env bash
# Installs the system packages the build needs (Debian): libomp-dev for the OpenMP kernels.
# Runs apt-get directly as root, through sudo otherwise; prints the command when neither works.
set -euo pipefail

packages=(libomp-dev)
missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

command="apt-get update && apt-get install -y ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
    echo "deps: installing ${missing[*]} with apt-get"
    DEBIAN_FRONTEND=noninteractive bash -c "$command"
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    echo "deps: installing ${missing[*]} with sudo apt-get"
    sudo DEBIAN_FRONTEND=noninteractive bash -c "$command"
else
    echo "deps: missing ${missing[*]} and no root rights to install them." >&2
    echo "deps: run this as root, then run make again:  sudo sh -c '$command'" >&2
    exit 1
fi
