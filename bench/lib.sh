# Shared by bench/run, bench/streams and bench/soak (sourced, not run): processes, builds, the
# gateway's configs and the request bodies of each kind. The caller sets `here` (bench/), `root`,
# `results` (before starting anything), and the settings it documents.
# shellcheck shell=bash

say() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

pinning=0
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then pinning=1; fi
on_cpus() { # on_cpus CPUS: the command prefix that pins to CPUS (nothing when we cannot pin)
  [ "$pinning" = 1 ] && echo taskset -c "$1"
  return 0
}

# --- processes: each in its own session, so stopping one stops its children ------------------------
pids=()
start_bg() { # start_bg LOG CPUS CMD...: prints nothing, appends the pid to pids
  local log=$1 cpus=$2; shift 2
  # shellcheck disable=SC2046 # on_cpus prints words to split
  setsid $(on_cpus "$cpus") "$@" >"$log" 2>&1 </dev/null &
  pids+=("$!")
}
stop() { # stop PID: TERM its process group, KILL whatever is left after 2 s
  local pid=$1 i
  kill -TERM -- "-$pid" 2>/dev/null || return 0
  for i in 1 2 3 4 5 6 7 8 9 10; do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() { local pid; for pid in "${pids[@]}"; do stop "$pid"; done; }
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_ready() { # wait_ready NAME URL PID SECONDS LOG
  local name=$1 url=$2 pid=$3 deadline=$(( SECONDS + $4 )) log=$5
  until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { tail -n 30 "$log" >&2; die "$name exited before it was ready (log: $log)"; }
    [ "$SECONDS" -lt "$deadline" ] || { tail -n 30 "$log" >&2; die "$name not ready at $url after $4 s (log: $log)"; }
    sleep 0.2
  done
}
seconds() { # seconds 5s|2m|1h: wrk's duration in seconds
  case $1 in *m) echo $(( ${1%m} * 60 )) ;; *h) echo $(( ${1%h} * 3600 )) ;; *) echo "${1%s}" ;; esac
}
rss_kib() { # rss_kib PID: resident memory in KiB (empty when the process is gone)
  sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$1/status" 2>/dev/null || true
}

# --- builds ----------------------------------------------------------------------------------------
# build_bins HOSTS: builds bench-upstream (and bench-streams, llmgate-hyper, bench-floor: the bench crate),
# and, when HOSTS has pingora and GATEWAY_BIN is unset, the llmgate binary, in one cargo run.
# Sets target_dir, upstream_bin, streams_bin, gateway_bin (pingora), hyper_bin, floor_bin. With BIN_DIR
# set, builds nothing and takes them from there (llmgate and llmgate-hyper unless GATEWAY_BIN
# and HYPER_BIN name others): binaries kept from another build, compared in one run.
build_bins() {
  local hosts=$1 packages=(-p llmgate-bench)
  if [ -n "${BIN_DIR:-}" ]; then
    upstream_bin=$BIN_DIR/bench-upstream streams_bin=$BIN_DIR/bench-streams
    gateway_bin=${GATEWAY_BIN:-$BIN_DIR/llmgate} hyper_bin=${HYPER_BIN:-$BIN_DIR/llmgate-hyper}
    floor_bin=$BIN_DIR/bench-floor
    return 0
  fi
  target_dir=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])') ||
    die "cargo metadata failed: is the workspace broken?"
  gateway_bin=${GATEWAY_BIN:-}
  if [[ " $hosts " == *" pingora "* ]] && [ -z "$gateway_bin" ]; then
    packages+=(-p llmgate-server)
    gateway_bin=$target_dir/release/llmgate
  fi
  say "building ${packages[*]} (release)"
  cargo build --release --quiet "${packages[@]}" ||
    die "cargo build --release ${packages[*]} failed; 'bench/run --targets direct' needs only the bench crate"
  upstream_bin=$target_dir/release/bench-upstream
  streams_bin=$target_dir/release/bench-streams
  hyper_bin=$target_dir/release/llmgate-hyper
  floor_bin=$target_dir/release/bench-floor
  if [[ " $hosts " == *" pingora "* ]] && [ ! -x "$gateway_bin" ]; then
    die "no gateway binary at $gateway_bin"
  fi
}

# start_upstream CPUS [ARGS...]: starts bench-upstream; sets upstream_port and upstream_pid.
start_upstream() {
  local cpus=$1; shift
  start_bg "$results/upstream.log" "$cpus" "$upstream_bin" --port 0 --threads "${UPSTREAM_THREADS:-1}" "$@"
  upstream_pid=${pids[-1]}
  upstream_port=""
  for _ in $(seq 50); do
    upstream_port=$(sed -n 's|^listening on http://127\.0\.0\.1:\([0-9]*\)$|\1|p' "$results/upstream.log" 2>/dev/null || true)
    [ -n "$upstream_port" ] && break
    kill -0 "$upstream_pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$upstream_port" ] || { cat "$results/upstream.log" >&2; die "bench-upstream did not start"; }
  say "upstream on 127.0.0.1:$upstream_port"
}

# --- the gateway's configs -------------------------------------------------------------------------
has() { [[ " $2 " == *" $1 "* ]]; } # has WORD "LIST"
check_stacks() { # check_stacks STACKS
  local st
  for st in $1; do
    case $st in master|key|limits|routing|fallbacks|full) ;; *) die "unknown stack '$st' (see --help)" ;; esac
    case $st in key|limits|full) [ "${MASTER_KEY:-}" != none ] || die "stack '$st' needs a master key (MASTER_KEY=none given)" ;; esac
  done
}
check_hosts() { # check_hosts HOSTS
  local h
  for h in $1; do case $h in pingora|hyper|floor) ;; *) die "unknown host '$h' (pingora, hyper, floor)" ;; esac; done
}
layers_of() { # layers_of STACK: the layers a stack turns on
  case $1 in
    master) echo "" ;; key) echo "key" ;; limits) echo "key limits" ;;
    routing) echo "routing" ;; fallbacks) echo "fallbacks" ;;
    full) echo "key limits routing fallbacks" ;;
  esac
}
entry() { # entry NAME ID: one deployment at the upstream
  printf '  - model_name: %s\n    litellm_params:\n      model: openai/bench-model\n      api_base: http://127.0.0.1:%s/v1\n      api_key: sk-bench\n    model_info:\n      id: %s\n' "$1" "$upstream_port" "$2"
}
write_config() { # write_config STACK FILE [DB]: the database defaults to results/STACK.db
  local layers; layers=$(layers_of "$1")
  {
    echo "model_list:"
    entry bench bench-1
    has routing "$layers" && entry bench bench-2
    has fallbacks "$layers" && entry bench-fallback bench-f
    if has fallbacks "$layers"; then
      printf 'router_settings:\n  num_retries: 2\n  fallbacks:\n    - bench: [bench-fallback]\n'
    fi
    if [ "$MASTER_KEY" != none ]; then
      printf 'general_settings:\n  master_key: %s\n  database_url: sqlite://%s\n' "$MASTER_KEY" "${3:-$results/$1.db}"
      if [ "${SPEND_LOGS:-yes}" = no ]; then printf '  disable_spend_logs: true\n'; fi
      if [ -n "${SPEND_BATCH:-}" ]; then printf '  spend_batch_size: %s\n' "$SPEND_BATCH"; fi
    fi
  } >"$2"
}

# start_gateway HOST STACK CPUS: starts the gateway (pingora: the llmgate binary; hyper:
# llmgate-hyper) on STACK's config, with GATEWAY_ENV's variables (NAME=VALUE words), and waits
# for it; sets gw_port, gw_pid (the group to stop), and KEY (a virtual key made through /key/generate when the stack has one, else MASTER_KEY).
start_gateway() {
  local host=$1 stack=$2 cpus=$3 bin layers limits log=$results/llmgate-$1-$2.log
  if [ "$host" = floor ]; then start_floor "$cpus" "$log"; return 0; fi
  bin=$gateway_bin
  [ "$host" = hyper ] && bin=$hyper_bin
  gw_port=$(free_port)
  write_config "$stack" "$results/config-$stack.yaml"
  # shellcheck disable=SC2086 # GATEWAY_ENV is a list of NAME=VALUE words
  RUST_LOG=${GATEWAY_LOG:-warn} start_bg "$log" "$cpus" env ${GATEWAY_ENV:-} "$bin" \
    --config "$results/config-$stack.yaml" --port "$gw_port" --host 127.0.0.1 \
    --num_workers "${GATEWAY_WORKERS:-1}"
  gw_pid=${pids[-1]}
  wait_ready "llmgate ($host)" "http://127.0.0.1:$gw_port/health/liveliness" "$gw_pid" 60 "$log"
  KEY=$MASTER_KEY
  layers=$(layers_of "$stack")
  if has key "$layers"; then
    limits='{}'
    has limits "$layers" && limits='{"rpm_limit": 100000000, "tpm_limit": 1000000000000}'
    KEY=$(curl -fsS -H "Authorization: Bearer $MASTER_KEY" -H 'Content-Type: application/json' \
      -d "$limits" "http://127.0.0.1:$gw_port/key/generate" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])') \
      || die "could not make the virtual key for stack $stack"
  fi
}

# start_floor CPUS LOG: starts bench-floor (a pass-through proxy to the upstream, no stack) as
# start_gateway starts the gateway; sets gw_port, gw_pid and KEY (the master key, unread).
start_floor() {
  gw_port=$(free_port)
  start_bg "$2" "$1" "$floor_bin" --upstream "http://127.0.0.1:$upstream_port" --port "$gw_port" \
    --num_workers "${GATEWAY_WORKERS:-1}"
  gw_pid=${pids[-1]}
  wait_ready "bench-floor" "http://127.0.0.1:$gw_port/v1/models" "$gw_pid" 60 "$2"
  KEY=$MASTER_KEY
}

# --- requests of each kind -------------------------------------------------------------------------
check_kinds() { # check_kinds KINDS
  local k
  for k in $1; do case $k in chat|messages|responses) ;; *) die "unknown kind '$k' (chat, messages, responses)" ;; esac; done
}
path_of() { # path_of KIND
  case $1 in chat) echo /v1/chat/completions ;; messages) echo /v1/messages ;; responses) echo /v1/responses ;; esac
}
body() { # body KIND MODEL STREAM: the request body
  local extra=""
  case $1 in
    chat)
      [ "$3" = yes ] && extra=',"stream":true,"stream_options":{"include_usage":true}'
      printf '{"model":"%s","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16%s}' "$2" "$extra" ;;
    messages)
      [ "$3" = yes ] && extra=',"stream":true'
      printf '{"model":"%s","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16%s}' "$2" "$extra" ;;
    responses)
      [ "$3" = yes ] && extra=',"stream":true'
      printf '{"model":"%s","input":"Say hello.","max_output_tokens":16%s}' "$2" "$extra" ;;
  esac
}
expect_of() { # expect_of KIND STREAM: an extended regex a good answer matches
  case $1-$2 in
    chat-no) echo '"object": ?"chat\.completion"' ;;
    chat-yes) echo '^data: \[DONE\]' ;;
    messages-no) echo '"type": ?"message"' ;;
    messages-yes) echo '^event: message_stop' ;;
    responses-no) echo '"object": ?"response"' ;;
    responses-yes) echo '^event: response\.completed' ;;
  esac
}
end_marker_of() { # end_marker_of KIND: what the last bytes of a complete stream hold
  case $1 in chat) echo '[DONE]' ;; messages) echo 'message_stop' ;; responses) echo 'response.completed' ;; esac
}
