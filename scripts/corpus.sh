#!/usr/bin/env bash
# Fetches the benchmark corpus (five large real-world JPEGs from Debian's
# ukui-wallpapers package) into .cache/corpus, once. Prints the directory.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.cache/corpus
if [[ $(ls "$dest"/*.jpg 2>/dev/null | wc -l) -ge 5 ]]; then
  echo "$dest"
  exit 0
fi
mkdir -p "$dest"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download ukui-wallpapers >/dev/null 2>&1 && dpkg -x ukui-wallpapers_*.deb x)
for name in 2004default firstgeneration rhythm string the-mouse; do
  cp "$work/x/usr/share/backgrounds/$name.jpg" "$dest/"
done
echo "$dest"
