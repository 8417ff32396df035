# Waiting for a quiet machine before timing: sourced by the benchmark scripts. Other work (builds,
# helpers, CI) shares these small machines, and a run measured beside it measures nothing.

# Waits (up to `tries` x 10 s) for the 1-minute load average to fall below `max`; no-op for "".
wait_for_load() {
  local max="$1" tries="${2:-60}"
  [[ -n "$max" ]] || return 0
  for _ in $(seq "$tries"); do
    awk -v max="$max" '{ exit !($1 < max) }' /proc/loadavg && return 0
    sleep 10
  done
}

# Percent of the machine's CPU time used (by anyone, hypervisor steal included) over one second.
machine_busy() {
  local a b i total=0 idle
  read -r -a a < /proc/stat; sleep 1; read -r -a b < /proc/stat
  for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
  idle=$(( (b[4] + b[5]) - (a[4] + a[5]) ))
  echo $(( total > 0 ? 100 * (total - idle) / total : 0 ))
}

# Waits (up to ~60 s) until the machine is less than 15% busy; prints the last busy percentage.
wait_quiet() {
  local busy=100
  for _ in $(seq 30); do busy=$(machine_busy); (( busy < 15 )) && break; sleep 1; done
  echo "$busy"
}
