#!/bin/sh
# Outpost installer, served by the management host at {{.URL}}/v1/install.sh
# (outpost {{.Version}}). Run it through the one-liner that
# 'outpost installcmd create' or 'outpost proxy deploy --manual' prints:
#
#   curl -fsSk --pinnedpubkey PIN URL/v1/install.sh | sh -s -- agent|relay [OPTIONS] [FLAGS...]
#
# It downloads the outpost binary for this host's OS and architecture from
# the management host (the same key pinned), checks its SHA-256 against the
# one written below (fails closed), installs it as PREFIX/bin/outpost and
# runs 'outpost service install agent|relay' with FLAGS, which writes the
# systemd unit, enables and starts it. The --key or --join secret in FLAGS
# goes only to a 0600 file in the service's directory, never to the unit.
# Without systemd it prints the command to run under another supervisor.
#
# OPTIONS (everything else is passed to 'outpost agent run' or 'outpost relay'):
#   --prefix DIR     install DIR/bin/outpost (default /usr/local)
#   --dir DIR        agent directory (agent only)
#   --data DIR       relay data directory (relay only)
#   --user NAME      account the service runs as (default root)
#   --unit-dir DIR   directory of the unit file (default /etc/systemd/system)
#
# The body is one function called on the last line, so a download cut
# short runs nothing.

outpost_install() {
	url={{sq .URL}}
	pin={{sq .Pin}}
	sums={{sq .Sums}}

	kind=${1-}
	case $kind in
	agent | relay) shift ;;
	*) outpost_die "usage: sh -s -- agent|relay [--prefix DIR] [--dir DIR | --data DIR] [--user NAME] [FLAGS...]" ;;
	esac

	# Take this script's options out of "$@"; the rest stay, in order.
	prefix=/usr/local dir= data= user= unitdir= systemddir=
	n=$#
	while [ "$n" -gt 0 ]; do
		arg=$1
		shift
		n=$((n - 1))
		case $arg in
		--prefix | --dir | --data | --user | --unit-dir | --systemd-dir)
			[ "$n" -gt 0 ] || outpost_die "$arg needs a value"
			val=$1
			shift
			n=$((n - 1))
			;;
		--prefix=* | --dir=* | --data=* | --user=* | --unit-dir=* | --systemd-dir=*)
			val=${arg#*=}
			arg=${arg%%=*}
			;;
		*)
			set -- "$@" "$arg"
			continue
			;;
		esac
		case $arg in
		--prefix) prefix=$val ;;
		--dir) dir=$val ;;
		--data) data=$val ;;
		--user) user=$val ;;
		--unit-dir) unitdir=$val ;;
		--systemd-dir) systemddir=$val ;;
		esac
	done
	if [ "$kind" = agent ] && [ -n "$data" ]; then
		outpost_die "--data is for a relay; the agent's directory is --dir"
	fi
	if [ "$kind" = relay ] && [ -n "$dir" ]; then
		outpost_die "--dir is for an agent; the relay's directory is --data"
	fi
	case $prefix in
	/*) ;;
	*) outpost_die "--prefix $prefix: want an absolute path" ;;
	esac

	os=$(uname -s)
	case $os in
	Linux) os=linux ;;
	Darwin) os=darwin ;;
	FreeBSD) os=freebsd ;;
	*) outpost_die "unsupported operating system: $os" ;;
	esac
	arch=$(uname -m)
	case $arch in
	x86_64 | amd64) arch=amd64 ;;
	aarch64 | arm64) arch=arm64 ;;
	armv6* | armv7*) arch=arm ;;
	i386 | i486 | i586 | i686) arch=386 ;;
	esac
	name=outpost-$os-$arch
	want= have=
	while read -r sum file; do
		[ -n "$file" ] || continue
		have="$have ${file#outpost-}"
		if [ "$file" = "$name" ]; then want=$sum; fi
	done <<EOF
$sums
EOF
	if [ -z "$want" ]; then
		outpost_die "the management host has no $name binary (it has:${have:- none}); put one at DATA/dist/$name on the management host; nothing installed"
	fi

	bindir=$prefix/bin
	bin=$bindir/outpost
	if ! mkdir -p "$bindir" 2>/dev/null || ! [ -w "$bindir" ]; then
		outpost_die "cannot write $bindir: run as root, or give --prefix DIR; nothing installed"
	fi
	# Downloaded beside the target, so installing it is one rename.
	tmp=$bindir/.outpost.$$.download
	trap 'rm -f "$tmp"' EXIT
	trap 'rm -f "$tmp"; exit 1' HUP INT TERM
	src=$url/v1/dist/$name
	if command -v curl >/dev/null 2>&1; then
		via=curl
		curl -fsSk --pinnedpubkey "$pin" -o "$tmp" "$src" || outpost_die "download of $src failed (above); nothing installed"
	elif command -v wget >/dev/null 2>&1; then
		via=wget
		# wget cannot pin the key: the SHA-256 check below is what holds.
		wget -q --no-check-certificate -O "$tmp" "$src" || outpost_die "download of $src failed; nothing installed"
	else
		outpost_die "need curl or wget to download $src; nothing installed"
	fi
	if command -v sha256sum >/dev/null 2>&1; then
		got=$(sha256sum "$tmp")
	elif command -v shasum >/dev/null 2>&1; then
		got=$(shasum -a 256 "$tmp")
	elif command -v openssl >/dev/null 2>&1; then
		got=$(openssl dgst -sha256 -r "$tmp")
	else
		outpost_die "need sha256sum, shasum or openssl to check the download; nothing installed"
	fi
	got=${got%% *}
	if [ "$got" != "$want" ]; then
		outpost_die "SHA-256 mismatch for $name from $src: got $got, want $want; refusing it, nothing installed"
	fi
	outpost_say "downloaded $src with $via (SHA-256 $got, verified)"
	chmod 0755 "$tmp" && mv -f "$tmp" "$bin" || outpost_die "cannot install $bin"
	outpost_say "installed $bin: $("$bin" version 2>&1)"

	# 'outpost [--data DIR] service install KIND --bin BIN [OPTIONS] -- FLAGS'
	set -- -- "$@"
	[ -z "$systemddir" ] || set -- --systemd-dir "$systemddir" "$@"
	[ -z "$unitdir" ] || set -- --unit-dir "$unitdir" "$@"
	[ -z "$user" ] || set -- --user "$user" "$@"
	[ -z "$dir" ] || set -- --dir "$dir" "$@"
	set -- service install "$kind" --bin "$bin" "$@"
	[ -z "$data" ] || set -- --data "$data" "$@"
	outpost_say "running: $bin service install $kind ..."
	"$bin" "$@" || outpost_die "$bin is installed, but no service was set up (the reason is above)"
	outpost_say "done: outpost-$kind.service is enabled and started; see it with: systemctl status outpost-$kind.service"
}

outpost_say() { printf 'outpost install: %s\n' "$*"; }
outpost_die() {
	printf 'outpost install: %s\n' "$*" >&2
	exit 1
}

outpost_install "$@"
