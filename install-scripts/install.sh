#!/bin/sh
# Installs xopcbot from a release binary and sets the gateway up as a per-user service (systemd user unit on
# Linux, LaunchAgent on macOS).
#
#   sh install.sh [--sha256 HEX] [--verify-only] BINARY [-- gateway install options]
#   sh install.sh --uninstall
#
# BINARY is a path or an http(s) URL of a release binary (xopcbot-<os>-<arch>). Its checksum is verified
# against --sha256, or against the SHA256SUMS file next to it (`npm run build` and `npm run build:all` write
# one in dist/); without either the install stops. --verify-only stops after the checksum and a test run of
# the binary, installing nothing.
set -eu

die() { printf '❌ %s\n' "$*" >&2; exit 1; }
say() { printf '%s\n' "$*"; }

home="${XOPCBOT_HOME:-$HOME/.xopcbot}"
installed="$home/bin/xopcbot"

if [ "${1:-}" = "--uninstall" ]; then
  [ -x "$installed" ] || die "xopcbot is not installed in $installed"
  "$installed" gateway uninstall
  rm -f "$installed"
  say "✅ xopcbot removed; your config and data in $home are kept"
  exit 0
fi

sha256=""
verify_only=""
while [ "$#" -gt 0 ]; do
  case "$1" in
    --sha256)
      [ "$#" -ge 2 ] || die "--sha256 needs a value"
      sha256="$2"
      shift 2 ;;
    --verify-only)
      verify_only=1
      shift ;;
    *) break ;;
  esac
done
[ "$#" -ge 1 ] || die "usage: sh install.sh [--sha256 HEX] [--verify-only] BINARY_PATH_OR_URL [-- gateway install options]"
source="$1"
shift
[ "${1:-}" = "--" ] && shift

case "$(uname -s)" in
  Linux) os=linux ;;
  Darwin) os=darwin ;;
  *) die "unsupported system $(uname -s); on Windows use install.ps1" ;;
esac
case "$(uname -m)" in
  x86_64 | amd64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) die "unsupported processor $(uname -m)" ;;
esac
libc=""
if [ "$os" = linux ] && ldd --version 2>&1 | grep -qi musl; then libc="-musl"; fi
expected_name="xopcbot-$os-$arch$libc"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT INT TERM
binary="$tmp/xopcbot"

fetch() {
  if command -v curl >/dev/null 2>&1; then curl -fsSL -o "$2" "$1"
  elif command -v wget >/dev/null 2>&1; then wget -q -O "$2" "$1"
  else die "neither curl nor wget is installed"; fi
}

case "$source" in
  http://* | https://*)
    say "Downloading $source"
    fetch "$source" "$binary" || die "download failed: $source"
    sums_source="${source%/*}/SHA256SUMS" ;;
  *)
    [ -f "$source" ] || die "no such file: $source"
    cp "$source" "$binary"
    sums_source="$(dirname "$source")/SHA256SUMS" ;;
esac

if [ -z "$sha256" ]; then
  sums="$tmp/SHA256SUMS"
  case "$sums_source" in
    http://* | https://*) fetch "$sums_source" "$sums" 2>/dev/null || : ;;
    *) [ -f "$sums_source" ] && cp "$sums_source" "$sums" ;;
  esac
  [ -s "$sums" ] || die "no checksum: pass --sha256 HEX, or put SHA256SUMS next to the binary"
  name="$(basename "$source")"
  sha256="$(awk -v n="$name" '$2 == n || $2 == "*" n { print $1 }' "$sums")"
  [ -n "$sha256" ] || die "SHA256SUMS has no line for $name"
  [ "$name" = "$expected_name" ] || [ "$name" = "$expected_name.exe" ] || say "⚠️ $name is not the usual build for this machine ($expected_name)"
fi

if command -v sha256sum >/dev/null 2>&1; then actual="$(sha256sum "$binary" | awk '{ print $1 }')"
else actual="$(shasum -a 256 "$binary" | awk '{ print $1 }')"; fi
[ "$actual" = "$sha256" ] || die "checksum mismatch: expected $sha256, got $actual"
say "✅ Checksum verified"

chmod 755 "$binary"
"$binary" --version >/dev/null 2>&1 || die "the binary does not run on this machine ($expected_name expected)"
if [ -n "$verify_only" ]; then
  say "✅ $(basename "$source") runs here; nothing installed (--verify-only)"
  exit 0
fi

# The binary copies itself to $home/bin/xopcbot and points the service at that copy.
"$binary" gateway install --runtime binary "$@"

say ""
say "Next steps:"
say "  $installed gateway service-status     # the service"
say "  $installed gateway token              # the API token"
say "  $installed gateway logs --follow      # what it does"
case ":$PATH:" in
  *":$home/bin:"*) ;;
  *) say "  Add $home/bin to your PATH to type just 'xopcbot'." ;;
esac
