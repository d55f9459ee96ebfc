# Shared by scripts/install-vps, scripts/install-pi and scripts/uninstall (sourced, not run).
#
# Three modes:
#   normal     change the machine: files, system user, systemctl.
#   --root D   write files under D (a scratch root); system commands (useradd,
#              chown to service users, systemctl, curl health check) are printed
#              with "skip (--root):" instead of run.
#   --dry-run  print every action ("would: ...") and change nothing at all.
# Every file step compares first and reports "unchanged" when there is nothing to
# do, so a second run changes nothing; `changes` counts what a run did.

ROOT=""
DRY=0
changes=0
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

say()  { echo "$PROG: $*"; }
warn() { echo "$PROG: warning: $*" >&2; }
die()  { echo "$PROG: error: $*" >&2; exit 1; }

# The path of a system path inside the target root.
p() { echo "${ROOT}$1"; }

# A command line, shell-quoted, for the log.
show() { local out="" a; for a in "$@"; do out+="$(printf '%q' "$a") "; done; echo "${out% }"; }

# A file-system change (runs under --root too, into the scratch root).
act() {
  if [ "$DRY" = 1 ]; then say "would: $(show "$@")"; return 0; fi
  say "+ $(show "$@")"
  "$@"
}

# A change to the running system (users, ownership, services): printed under --root.
sys() {
  if [ "$DRY" = 1 ]; then say "would: $(show "$@")"; return 0; fi
  if [ -n "$ROOT" ]; then say "skip (--root): $(show "$@")"; return 0; fi
  say "+ $(show "$@")"
  "$@"
}

need_root_user() {
  if [ "$DRY" = 0 ] && [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
    die "run as root (or with sudo), or use --root DIR / --dry-run"
  fi
}

ensure_dir() { # path mode
  local d; d="$(p "$1")"
  if [ -d "$d" ] && [ "$(stat -c %a "$d")" = "$2" ]; then return 0; fi
  if [ -d "$d" ]; then act chmod "$2" "$d"; else act install -d -m "$2" "$d"; fi
  changes=$((changes + 1))
}

# Copies SRC to system path DEST with MODE unless identical already.
# Returns 0 when it changed something, 1 when unchanged.
put_file() { # src dest mode
  local src="$1" dest; dest="$(p "$2")"
  [ -f "$src" ] || die "missing $src"
  if [ -f "$dest" ] && cmp -s "$src" "$dest" && [ "$(stat -c %a "$dest")" = "$3" ]; then
    say "unchanged: $2"
    return 1
  fi
  act install -D -m "$3" "$src" "$dest"
  changes=$((changes + 1))
  return 0
}

# Writes CONTENT to system path DEST with MODE unless identical already.
put_text() { # dest mode content
  local dest; dest="$(p "$1")"
  if [ -f "$dest" ] && [ "$(cat "$dest")" = "$3" ] && [ "$(stat -c %a "$dest")" = "$2" ]; then
    say "unchanged: $1"
    return 1
  fi
  if [ "$DRY" = 1 ]; then say "would: write $1 (mode $2)"; changes=$((changes + 1)); return 0; fi
  say "+ write $1 (mode $2)"
  install -d -m 0755 "$(dirname "$dest")"
  ( umask 077; printf '%s\n' "$3" > "$dest.tmp.$$" )
  chmod "$2" "$dest.tmp.$$"
  mv -f "$dest.tmp.$$" "$dest"
  changes=$((changes + 1))
  return 0
}

remove_path() { # system path
  local d; d="$(p "$1")"
  if [ -e "$d" ] || [ -L "$d" ]; then
    act rm -rf "$d"
    changes=$((changes + 1))
  fi
}

# The value of KEY in an env file (last assignment wins, like systemd).
env_get() { # file key
  [ -f "$1" ] || return 0
  sed -n "s/^$2=//p" "$1" | tail -n1 | sed -e 's/^"\(.*\)"$/\1/' -e "s/^'\(.*\)'$/\1/"
}

# Sets KEY=VALUE in env file text (stdin -> stdout): replaces the first active or
# commented-out assignment, or appends. The value reaches awk through its
# environment, never its argv: values are keys, and argv is world-readable
# (ps, /proc/PID/cmdline).
env_set_text() { # key value
  ENV_SET_VALUE="$2" awk -v k="$1" '
    BEGIN { v = ENVIRON["ENV_SET_VALUE"]; done = 0 }
    !done && ($0 ~ "^" k "=" || $0 ~ "^#" k "=") { print k "=" v; done = 1; next }
    $0 ~ "^" k "=" { next }
    { print }
    END { if (!done) print k "=" v }'
}

ensure_user() { # name home
  if getent passwd "$1" >/dev/null 2>&1; then
    say "user $1 exists"
    return 0
  fi
  sys useradd --system --user-group --home-dir "$2" --no-create-home \
    --shell /usr/sbin/nologin --comment "Cerebrum service" "$1"
}

# ELF machine of a binary: x86_64, aarch64 or other.
elf_arch() {
  case "$(od -An -t x2 -j 18 -N 2 "$1" 2>/dev/null | tr -d ' ')" in
    003e) echo x86_64 ;;
    00b7) echo aarch64 ;;
    *) echo other ;;
  esac
}

check_binary_arch() { # binary
  local want; want="$(uname -m)"
  local got; got="$(elf_arch "$1")"
  if [ "$got" != "$want" ]; then
    if [ -n "$ROOT" ] || [ "$DRY" = 1 ]; then
      warn "$1 is $got, this machine is $want (fine for --root/--dry-run, not for a real install)"
    else
      die "$1 is built for $got but this machine is $want"
    fi
  fi
}

# Type=notify needs the binary to send READY=1 (the sd-notify crate reads NOTIFY_SOCKET).
# Without it, systemd would wait TimeoutStartSec and kill it: fall back to Type=exec.
notify_dropin() { # unit binary
  local dropin="/etc/systemd/system/$1.d/10-no-sd-notify.conf"
  if grep -aqF NOTIFY_SOCKET "$2"; then
    if [ -e "$(p "$dropin")" ]; then
      say "$2 speaks sd_notify: removing the Type=exec fallback"
      remove_path "$dropin"
      return 0
    fi
    return 1
  fi
  warn "$2 has no sd_notify support (no NOTIFY_SOCKET): using Type=exec without watchdog until it does"
  put_text "$dropin" 644 "# Written by scripts/install-*: this binary does not send READY=1/WATCHDOG=1.
# Removed automatically when a binary that does is installed.
[Service]
Type=exec
WatchdogSec=0"
}

# Waits for http://HOST:PORT/health to answer 200 (real installs only).
health_check() { # host port
  local host="$1" port="$2"
  case "$host" in 0.0.0.0|"") host=127.0.0.1 ;; ::) host="[::1]" ;; *:*) host="[$host]" ;; esac
  local url="http://$host:$port/health"
  if [ "$DRY" = 1 ]; then say "would: curl -fsS $url (up to 60 s)"; return 0; fi
  if [ -n "$ROOT" ]; then say "skip (--root): curl -fsS $url"; return 0; fi
  command -v curl >/dev/null || { warn "curl missing: skipping the health check"; return 0; }
  local i body
  for i in $(seq 1 60); do
    if body="$(curl -fsS --max-time 2 "$url" 2>/dev/null)"; then
      say "healthy: $url -> $body"
      return 0
    fi
    sleep 1
  done
  die "no answer from $url after 60 s; see: journalctl -u $UNIT -n 50"
}
