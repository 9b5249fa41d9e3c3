#!/usr/bin/env bash
# Print the path of a Python 3.12 or newer: first on PATH, then among
# pyenv's installed versions. Django 6 needs 3.12.
set -uo pipefail

good() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1; }

for name in python3.12 python3.13 python3 python; do
  if candidate=$(command -v "$name" 2>/dev/null) && good "$candidate"; then
    echo "$candidate"; exit 0
  fi
done
# pyenv shims fail without a chosen version, so look at the interpreters.
root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
for candidate in $(ls -d "$root"/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -V); do
  if good "$candidate"; then echo "$candidate"; exit 0; fi
done
echo "No Python 3.12 or newer found. Install one (e.g. 'apt-get install python3.12'" \
  "or 'pyenv install 3.12') and run again." >&2
exit 1
