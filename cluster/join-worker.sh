#!/usr/bin/env bash
# Join this machine to a Ray cluster as a worker node, with the cluster token.
#
#   cluster/join-worker.sh HEAD_IP:PORT [--host IP] [RAY START OPTIONS ...]
#
#   HEAD_IP:PORT   the head's --host and GCS port (default port 6379)
#   --host IP      this node's address on the cluster network (default: Ray's guess)
#   anything else  passed to `ray start` unchanged: --num-cpus, --num-gpus, --block, ...
#
# The token must already be here: $RAY_AUTH_TOKEN, the file $RAY_AUTH_TOKEN_PATH, or
# ~/.ray/auth_token, copied from the head (mode 0600). Without it the head refuses the
# node. A second node on the head's own machine, for a head on 127.0.0.1, is started
# with `tuning-service cluster join` instead (Ray cannot join a loopback-only head).
set -euo pipefail
# shellcheck source=token-file.sh
source "$(dirname "${BASH_SOURCE[0]}")/token-file.sh"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

if (($# < 1)) || [[ "$1" == -h || "$1" == --help ]]; then
  usage
  (($# >= 1)) && exit 0 || exit 2
fi
head="$1"
shift
host=""
passthrough=()
while (($#)); do
  case "$1" in
    --host) host="${2:?--host needs an IP address}"; shift 2 ;;
    --host=*) host="${1#*=}"; shift ;;
    *) passthrough+=("$1"); shift ;;
  esac
done

case "${head%:*}" in
  127.0.0.1 | localhost | "[::1]")
    echo "error: ray start cannot join a head on $head (Ray swaps 127.0.0.1 for this machine's public address);" \
      "run \`tuning-service cluster join $head\` for a second node on this machine," \
      "or start the head with --host IP for other machines" >&2
    exit 2 ;;
esac

if [[ -z "${RAY_AUTH_TOKEN:-}" ]]; then
  token_path="${RAY_AUTH_TOKEN_PATH:-$HOME/.ray/auth_token}"
  if [[ ! -s "$token_path" ]]; then
    echo "error: no cluster token at $token_path; copy the head's token here first:" \
      "scp HEAD:~/.ray/auth_token $token_path && chmod 600 $token_path" >&2
    exit 2
  fi
  refuse_unsafe_token "$token_path"
  export RAY_AUTH_TOKEN_PATH="$token_path"
fi
# Always token mode, whatever RAY_AUTH_MODE said: the head refuses a node without the token.
export RAY_AUTH_MODE=token

# A worker for a head on another machine binds beyond loopback, always.
echo "warning: Ray's cluster ports and its metrics endpoints (which answer without the token)" \
  "listen on every interface of this machine; admit only the cluster's nodes (see README, Security)" >&2

exec ray start --address="$head" \
  ${host:+--node-ip-address="$host"} \
  --disable-usage-stats \
  ${passthrough[@]+"${passthrough[@]}"}
