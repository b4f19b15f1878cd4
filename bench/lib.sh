# Helpers shared by the bench/ scripts (sourced, not run).

# median [NUMBER...]: the median of the arguments, or of stdin's lines when none are given.
median() {
  if [ $# -gt 0 ]; then printf '%s\n' "$@"; else cat; fi |
    sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

# wait_port FILE PID [LOG]: waits (10 s at most) for a process to write its port file; a
# process that exits first ends the script (with its log on stderr when given).
wait_port() {
  for _ in $(seq 400); do
    [ -s "$1" ] && return 0
    if ! kill -0 "$2" 2>/dev/null; then
      if [ -n "${3:-}" ]; then cat "$3" >&2; else echo "process $2 exited" >&2; fi
      exit 1
    fi
    sleep 0.025
  done
  echo "no port in $1" >&2
  exit 1
}

# stop_pid PID: ends a process this script started, if it runs.
stop_pid() { [ -n "${1:-}" ] && kill "$1" 2>/dev/null && wait "$1" 2>/dev/null; return 0; }
