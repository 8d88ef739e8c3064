# shellcheck shell=bash
# Sourced by tests/integration/zabbix_server.sh (after lib/common.sh): a Debian root made with
# debootstrap holding one Debian release's own Zabbix server, frontend and PostgreSQL, with the
# Zabbix database already created, cached under /var/cache/check-ephemeral-ports/ and rebuilt
# when missing. A test never writes into the cache: it runs on an overlay mount of it.
#
# Why a root for Debian 12 too (the host is Debian 12): the server packages, their PostgreSQL
# cluster and the frontend's /etc/zabbix/web/zabbix.conf.php then stay out of the host, and
# both servers are started, checked and removed the same way.

# CHECK_EPHEMERAL_PORTS_CACHE moves it, e.g. to try a first run without touching the cache.
zbx_cache_base=${CHECK_EPHEMERAL_PORTS_CACHE:-/var/cache/check-ephemeral-ports}

# The Debian mirror this host's apt already uses (the first deb URI that is no security
# archive), so that debootstrap needs no address of its own.
debian_mirror() {
    {
        sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | tr ' ' '\n'
        sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]\+\).*/\2/p' /etc/apt/sources.list 2>/dev/null
    } | grep -v -e '-security' -e '^$' | grep '/debian/\?$' | head -n 1
}

# zbx_chroot ROOT CMD...: CMD inside ROOT with a clean environment.
zbx_chroot() {
    local r=$1; shift
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive HOME=/root \
        chroot "$r" "$@"
}

# The packages in the root. php-cli serves the frontend (php -S); the server's own schema
# files come with zabbix-server-pgsql.
zbx_root_packages="zabbix-server-pgsql zabbix-frontend-php php-pgsql php-cli postgresql"

# zbx_prepare_root SUITE KEY LOG: prints the path of the cached root for SUITE (bookworm,
# trixie), building it first when $zbx_cache_base/KEY/.ready is missing. Run inside a private
# mount namespace (the caller's unshare), so that no mount made here can outlive the test.
# Two runs at once (two worktrees, build.sh and a hand run) take turns on a lock per root: the
# second waits for the first's build and uses it, instead of deleting its half-made root.
zbx_prepare_root() {
    mkdir -p "$zbx_cache_base" || return 1
    (
        flock -w 1800 9 || { echo "waited 30 minutes for $zbx_cache_base/.$2.lock" >>"$3"; exit 1; }
        zbx_build_root "$@"
    ) 9>"$zbx_cache_base/.$2.lock"
}

zbx_build_root() {
    local suite=$1 key=$2 log=$3 part mirror
    local dir=$zbx_cache_base/$key
    if [ -e "$dir/.ready" ]; then echo "$dir"; return 0; fi
    part=$dir.partial
    rm -rf "$part" && mkdir -p "$part" || return 1
    mirror=$(debian_mirror)
    [ -n "$mirror" ] || { echo "no Debian mirror found in the apt sources" >>"$log"; return 1; }
    echo "# debootstrap $suite (first run only, a few minutes) -> $dir" >&2
    debootstrap --variant=minbase "$suite" "$part" "$mirror" >>"$log" 2>&1 || return 1
    # No daemon starts on install; the test starts its own.
    printf '#!/bin/sh\nexit 101\n' >"$part/usr/sbin/policy-rc.d" && chmod 755 "$part/usr/sbin/policy-rc.d"
    mount -t proc proc "$part/proc" || return 1
    local rc=0
    # shellcheck disable=SC2086  # a list of packages
    zbx_chroot "$part" apt-get update -qq >>"$log" 2>&1 &&
        zbx_chroot "$part" apt-get install -y -qq --no-install-recommends $zbx_root_packages >>"$log" 2>&1 &&
        zbx_chroot "$part" apt-get clean >>"$log" 2>&1 &&
        zbx_prepare_database "$part" "$log" || rc=1
    umount "$part/proc"
    [ $rc = 0 ] || return 1
    date -u +%FT%TZ >"$part/.ready"
    rm -rf "$dir" && mv "$part" "$dir" && echo "$dir"
}

# The PostgreSQL binaries' directory inside a root (the release's one major version).
zbx_pg_bindir() { local d; for d in "$1"/usr/lib/postgresql/*/bin; do echo "${d#"$1"}"; done | tail -n 1; }

# A cluster of our own in /var/lib/zbxtest/pgdata (trust on the local socket and on 127.0.0.1,
# no TCP listener while preparing), the zabbix role and database, and the server's schema,
# images and data. Stopped again before the root is cached.
zbx_prepare_database() {
    local r=$1 log=$2 bindir schema f
    bindir=$(zbx_pg_bindir "$r")
    mkdir -p "$r/var/lib/zbxtest" "$r/run/postgresql"
    zbx_chroot "$r" chown postgres:postgres /var/lib/zbxtest /run/postgresql || return 1
    zbx_chroot "$r" setpriv --reuid=postgres --regid=postgres --init-groups \
        "$bindir/initdb" -D /var/lib/zbxtest/pgdata -A trust -U postgres -E UTF8 --locale=C.UTF-8 >>"$log" 2>&1 || return 1
    zbx_chroot "$r" setpriv --reuid=postgres --regid=postgres --init-groups \
        "$bindir/pg_ctl" -D /var/lib/zbxtest/pgdata -w -l /var/lib/zbxtest/prepare.log \
        -o "-c listen_addresses='' -k /run/postgresql -c dynamic_shared_memory_type=mmap" start >>"$log" 2>&1 || return 1
    local rc=0
    schema=/usr/share/zabbix-server-pgsql
    (
        zbx_chroot "$r" psql -h /run/postgresql -U postgres -q -c "CREATE ROLE zabbix LOGIN" &&
            zbx_chroot "$r" psql -h /run/postgresql -U postgres -q -c "CREATE DATABASE zabbix OWNER zabbix ENCODING 'UTF8' TEMPLATE template0" &&
            for f in schema images data; do
                zbx_chroot "$r" sh -c "zcat $schema/$f.sql.gz | psql -h /run/postgresql -U zabbix -q -v ON_ERROR_STOP=1 zabbix" || exit 1
            done
    ) >>"$log" 2>&1 || rc=1
    zbx_chroot "$r" setpriv --reuid=postgres --regid=postgres --init-groups \
        "$bindir/pg_ctl" -D /var/lib/zbxtest/pgdata -w -m fast stop >>"$log" 2>&1
    return $rc
}
