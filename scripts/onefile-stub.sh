#!/bin/sh
# Aionix, the single executable: this POSIX sh stub followed by a tar.gz of the one-directory
# build (`make binary-dir`). The first start unpacks the directory into a private per-user cache,
# ${XDG_CACHE_HOME:-$HOME/.cache}/aionix/<payload hash>/, and every start (that one included)
# replaces this shell with the program there (`exec`: same pid, same environment and
# arguments), so later starts unpack nothing. Where no cache directory is usable (a read-only or
# missing home, a directory owned by someone else or writable by others), the payload is
# unpacked into a fresh private temporary directory, run, and removed when the program exits.
# Needs only sh, tar, gzip, tail, ls, mkdir, mv, rm and mktemp (POSIX; Debian's base has them).
# `make binary` fills in the two values below; the payload starts on line PAYLOAD_LINE.
PAYLOAD_HASH=@PAYLOAD_HASH@
PAYLOAD_LINE=@PAYLOAD_LINE@
self=$0
# unpack with a private umask; the program gets the caller's own back (it makes directories
# that its function workers, other uids, must traverse)
caller_umask=$(umask)
umask 077

# The program under $1 as this name asks: `aio` (a link or copy named aio, aio.*) is the CLI.
program() {
    case ${self##*/} in
    aio | aio.*) printf '%s/aionix/aio' "$1" ;;
    *) printf '%s/aionix/aionix' "$1" ;;
    esac
}

# True when $1 is a real directory (no symlink) owned by us that nobody else may write to.
private_dir() {
    [ -d "$1" ] && [ ! -L "$1" ] && [ -O "$1" ] || return 1
    mode=$(ls -ldn -- "$1" 2>/dev/null) || return 1
    case $mode in
    d????w????* | d???????w?*) return 1 ;; # writable by the group or others
    esac
    return 0
}

unpack() { # into the (new, private) directory $1
    tail -n +"$PAYLOAD_LINE" -- "$self" | tar -xzf - -C "$1" && [ -x "$1/aionix/aionix" ]
}

if [ -n "${XDG_CACHE_HOME:-}" ] && [ "${XDG_CACHE_HOME#/}" != "$XDG_CACHE_HOME" ]; then
    cache=$XDG_CACHE_HOME
elif [ -n "${HOME:-}" ] && [ "$HOME" != / ]; then
    cache=$HOME/.cache
else
    cache=
fi

if [ -n "$cache" ]; then
    root=$cache/aionix
    dir=$root/$PAYLOAD_HASH
    # the usual start: unpacked before, and the cache and the directory still ours alone
    if private_dir "$dir" && private_dir "$root" && private_dir "$cache" && [ -x "$dir/aionix/aionix" ]; then
        umask "$caller_umask"
        exec "$(program "$dir")" "$@"
    fi
    if [ ! -e "$dir" ] && { [ -d "$cache" ] || mkdir -p -m 0700 "$cache" 2>/dev/null; } &&
        private_dir "$cache" && { [ -d "$root" ] || mkdir -m 0700 "$root" 2>/dev/null; } && private_dir "$root"; then
        # unpack beside it, then rename: concurrent first starts each unpack, one rename wins
        if staging=$(mktemp -d "$root/.unpack.XXXXXX" 2>/dev/null); then
            if unpack "$staging" && chmod 0700 "$staging" && { mv -T -- "$staging" "$dir" 2>/dev/null || [ -d "$dir" ]; }; then
                rm -rf -- "$staging"
                if private_dir "$dir" && [ -x "$dir/aionix/aionix" ]; then
                    umask "$caller_umask"
                    exec "$(program "$dir")" "$@"
                fi
            fi
            rm -rf -- "$staging"
        fi
    fi
    if [ -e "$dir" ] || [ -L "$dir" ]; then
        echo "aionix: not using $dir (not a directory of this user's alone, or incomplete); unpacking into a temporary directory" >&2
    fi
fi

# The fallback: a private temporary directory, removed when the program exits. Signals to this
# shell are passed on (SIGINT as SIGTERM: the shell starts the program with SIGINT ignored).
tmp=$(mktemp -d "${TMPDIR:-/tmp}/aionix.XXXXXX") || {
    echo "aionix: no writable cache or temporary directory to unpack into" >&2
    exit 70
}
trap 'rm -rf -- "$tmp"' EXIT
if ! unpack "$tmp"; then
    echo "aionix: could not unpack the program into $tmp" >&2
    exit 70
fi
prog=$(program "$tmp")
exec 3<&0
(
    trap - EXIT
    umask "$caller_umask"
    exec "$prog" "$@" <&3 3<&- # the child is the program itself: signals reach it
) &
child=$!
exec 3<&-
trap 'signalled=1; kill -TERM "$child" 2>/dev/null' TERM INT
trap 'signalled=1; kill -HUP "$child" 2>/dev/null' HUP
while :; do
    signalled=
    wait "$child"
    rc=$?
    if [ -n "$signalled" ] && [ "$rc" -gt 128 ]; then
        continue # a signal interrupted the wait, not the program's end: wait for that
    fi
    break
done
exit "$rc"
