# Sourced by start-head.sh and join-worker.sh: the checks a token file passes before Ray reads it.

# refuse_unsafe_token PATH: exit 2 unless PATH (after links) is yours and readable by you only.
refuse_unsafe_token() {
  local token_path="$1" mode
  if [[ ! -O "$token_path" ]]; then
    echo "error: $token_path belongs to another user; the token must be a file of your own" >&2
    exit 2
  fi
  mode="$(ls -lnL "$token_path" | cut -c1-10)"
  if [[ "$mode" != "-rw-------" ]]; then
    echo "error: $token_path has mode $mode; the token must be readable by you only: chmod 600 $token_path" >&2
    exit 2
  fi
}
