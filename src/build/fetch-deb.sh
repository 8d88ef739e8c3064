#!/usr/bin/env bash
# fetch-deb.sh SUITE PACKAGE[,PACKAGE...] ARCH DIR: unpacks each PACKAGE of Debian SUITE for ARCH
# into DIR (one apt session for all of them; their dependencies are not fetched), with a private apt
# state (the host's apt configuration, architectures and lists stay untouched). For
# a static library the sysroot's release lacks or has too old (the BPF reader's libbpf.a 1.1 is
# bookworm's; bullseye's 0.3 cannot parse a 6.x kernel's BTF). The archive is the one the host's
# apt uses for Debian.
set -euo pipefail
suite=${1:?suite} pkg=${2:?package} arch=${3:?arch} dest=${4:?dir}
# The first Debian archive the host's apt knows (deb822 or one-line format).
uri=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n 1)
[ -n "$uri" ] || uri=$(awk '$1 == "deb" && $0 !~ /security/ {print ($2 ~ /^\[/ ? $3 : $2); exit}' /etc/apt/sources.list 2>/dev/null)
[ -n "$uri" ] || { echo "fetch-deb.sh: no Debian archive in the host's apt sources" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/lists/partial" "$tmp/archives/partial" "$tmp/etc/sources.list.d" "$tmp/etc/preferences.d"
printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$uri" "$suite" >"$tmp/etc/sources.list.d/debian.sources"
opts=(-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$tmp/etc/sources.list.d"
      -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts="$tmp/etc/preferences.d"
      -o Dir::State::Lists="$tmp/lists" -o Dir::State::Status=/dev/null -o Dir::Cache="$tmp"
      -o Dir::Cache::Archives="$tmp/archives" -o APT::Architecture="$arch" -o APT::Architectures="$arch"
      -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
apt-get "${opts[@]}" update -qq >/dev/null
names=()
for p in ${pkg//,/ }; do names+=("$p:$arch"); done
(cd "$tmp/archives" && apt-get "${opts[@]}" download -qq "${names[@]}" >/dev/null)
for deb in "$tmp"/archives/*.deb; do
    dpkg-deb -x "$deb" "$dest"
    # What was unpacked, for the log of whoever keeps DIR: "package version arch".
    dpkg-deb -f "$deb" Package Version Architecture | awk -F': ' '{printf "%s%s", (NR > 1 ? " " : ""), $2} END {print ""}' >>"$dest/.fetched-debs"
    # Their whole control paragraphs, e.g. for the package a metapackage depends on.
    { dpkg-deb -f "$deb"; echo; } >>"$dest/.fetched-control"
done
