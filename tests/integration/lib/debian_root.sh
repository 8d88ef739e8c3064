# shellcheck shell=bash
# shellcheck disable=SC2034  # R and the cache paths are for the scripts that source this file
# A Debian 12 (bookworm) root with systemd, init-system-helpers and rpm, made once by debootstrap
# from this host's Debian mirror and cached under /var/cache/check-ephemeral-ports/ (keyed by its
# package list and a recipe number, built under a lock so that two scripts never race), for the
# package tests (package_systemd.sh, release.sh). Sourced after lib/common.sh, with $T set.
debian_root_suite=bookworm
debian_root_packages=systemd,init-system-helpers,rpm
debian_root_recipe=1
debian_root_cache_base=${CHECK_EPHEMERAL_PORTS_CACHE:-/var/cache/check-ephemeral-ports}
debian_root=$debian_root_cache_base/systemd-root-$debian_root_suite-$(dpkg --print-architecture)-r$debian_root_recipe-$(printf '%s' "$debian_root_packages" | sha256sum | cut -c1-12)

# The Debian mirror this host's apt uses (the first deb URI that is no security archive).
debian_mirror() {
    {
        sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | tr ' ' '\n'
        sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]\+\).*/\2/p' /etc/apt/sources.list 2>/dev/null
    } | grep -v -e '-security' -e '^$' | grep '/debian/\?$' | head -n 1
}

make_debian_root() {
    local part=$debian_root.partial mirror
    mirror=$(debian_mirror)
    mkdir -p "$debian_root_cache_base" && exec 9>"$debian_root_cache_base/.systemd-root.lock" && flock -w 1200 9 || return 1
    [ -e "$debian_root/.ready" ] && return 0
    rm -rf "$part"
    echo "# debootstrap $debian_root_suite with $debian_root_packages (first run only, a few minutes) -> $debian_root"
    debootstrap --variant=minbase --include="$debian_root_packages" "$debian_root_suite" "$part" ${mirror:+"$mirror"} >"$T/debootstrap.log" 2>&1 || return 1
    rm -f "$part"/var/cache/apt/archives/*.deb
    date -u +%FT%TZ >"$part/.ready"
    rm -rf "$debian_root" && mv "$part" "$debian_root"
}

# Makes the cached root where it is missing (one check line), or ends the script.
need_debian_root() {
    [ -e "$debian_root/.ready" ] && return 0
    check "Debian $debian_root_suite root with $debian_root_packages made (cached as $debian_root)" make_debian_root ||
        { tail -n 5 "$T/debootstrap.log" 2>/dev/null | sed 's/^/#   /'; exit 1; }
}
