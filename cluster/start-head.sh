#!/usr/bin/env bash
# Start a Ray head node that only admits holders of the cluster token.
#
#   cluster/start-head.sh [--host IP] [--dashboard-host HOST] [RAY START OPTIONS ...]
#
#   --host IP            address other machines reach this node at. Default 127.0.0.1:
#                        a one-machine cluster on which nothing binds beyond loopback.
#                        Ray binds its cluster ports on all interfaces once this is not
#                        127.0.0.1, so give it only on a private network (see README).
#   --dashboard-host H   where the dashboard and the Jobs API listen (default 127.0.0.1;
#                        reach them from your machine through `ssh -L 8265:127.0.0.1:8265`).
#   anything else        passed to `ray start --head` unchanged: --port, --num-cpus,
#                        --num-gpus, --dashboard-port, --block, ...
#
# The token is read from $RAY_AUTH_TOKEN, else the file $RAY_AUTH_TOKEN_PATH, else
# ~/.ray/auth_token; a missing file is created once, with mode 0600. Copy that file to
# every worker node and client (same path, mode 0600). The token never appears on a
# command line or in the output.
set -euo pipefail
# shellcheck source=token-file.sh
source "$(dirname "${BASH_SOURCE[0]}")/token-file.sh"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

host=127.0.0.1
dashboard_host=127.0.0.1
passthrough=()
while (($#)); do
  case "$1" in
    --host) host="${2:?--host needs an IP address}"; shift 2 ;;
    --host=*) host="${1#*=}"; shift ;;
    --dashboard-host) dashboard_host="${2:?--dashboard-host needs a host}"; shift 2 ;;
    --dashboard-host=*) dashboard_host="${1#*=}"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) passthrough+=("$1"); shift ;;
  esac
done

if [[ -z "${RAY_AUTH_TOKEN:-}" ]]; then
  token_path="${RAY_AUTH_TOKEN_PATH:-$HOME/.ray/auth_token}"
  if [[ ! -s "$token_path" ]]; then
    # 256 random bits as 64 hex characters, written into a new file no one else can read
    # (mktemp makes it 0600) and renamed over the path: an empty file or a symbolic link
    # already there is replaced, never written through.
    token_dir="$(dirname "$token_path")"
    (umask 077 && mkdir -p "$token_dir")
    new_token="$(mktemp "$token_dir/.auth_token.XXXXXX")"
    od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$new_token"
    mv -f "$new_token" "$token_path"
    echo "created the cluster token in $token_path (mode 0600): copy it to every worker and client" >&2
  fi
  refuse_unsafe_token "$token_path"
  export RAY_AUTH_TOKEN_PATH="$token_path"
fi
# Always token mode, whatever RAY_AUTH_MODE said: a head without it runs anyone's code.
export RAY_AUTH_MODE=token

case "$host" in
  127.0.0.1 | localhost | ::1)
    # Ray's single-machine switch: without it Ray swaps a loopback --node-ip-address for
    # the machine's public address and binds its ports on every interface.
    export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 ;;
  *)
    echo "warning: with --host $host, Ray's cluster ports and its metrics endpoints (which answer" \
      "without the token) listen on every interface of this machine; admit only the cluster's nodes" \
      "(see README, Security)" >&2 ;;
esac

exec ray start --head \
  --node-ip-address="$host" \
  --dashboard-host="$dashboard_host" \
  --disable-usage-stats \
  ${passthrough[@]+"${passthrough[@]}"}
