# Helpers shared by the scenario scripts (sourced, not run).
#
# The test harness sets RUMP (the rump binary) and DIR (a scratch
# directory the script owns). Every server the scripts start writes a pid
# file under $DIR; `cleanup` halts the ones still running when the script
# ends, however it ends, so a failing scenario leaves nothing behind.

: "${RUMP:?set RUMP to the rump binary}"
: "${DIR:?set DIR to a scratch directory}"

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# start NAME [server options...]: a server on unix://$DIR/NAME.sock,
# in the background, ready when this returns.
start() {
  name=$1
  shift
  "$RUMP" server --background --pidfile "$DIR/$name.pid" --allow-host "$DIR" \
    --log quiet "$@" "unix://$DIR/$name.sock" || fail "server $name did not start"
  [ -S "$DIR/$name.sock" ] || fail "server $name: no socket file"
  [ -s "$DIR/$name.pid" ] || fail "server $name: no pid file"
}

# start_fg NAME [server options...]: the same with the server in the
# foreground (a job of this shell), ready when it has written "ready" to
# the descriptor given with --ready-fd (here a fifo).
start_fg() {
  name=$1
  shift
  mkfifo "$DIR/$name.ready"
  "$RUMP" server --ready-fd 3 --pidfile "$DIR/$name.pid" --allow-host "$DIR" \
    --log quiet "$@" "unix://$DIR/$name.sock" 3>"$DIR/$name.ready" &
  read -r word <"$DIR/$name.ready" || word=
  rm -f "$DIR/$name.ready"
  [ "$word" = ready ] || fail "server $name did not report ready"
  [ -S "$DIR/$name.sock" ] || fail "server $name: no socket file"
}

# on NAME TOOL ARGS...: runs a tool against server NAME.
on() {
  name=$1
  shift
  RUMP_SERVER="unix://$DIR/$name.sock" "$RUMP" "$@"
}

# stop NAME: `rump halt`, then waits for the process to exit and checks
# that it removed its socket and pid files.
stop() {
  name=$1
  pid=$(cat "$DIR/$name.pid")
  on "$name" halt || fail "halt $name"
  i=0
  while kill -0 "$pid" 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 100 ] || fail "server $name (pid $pid) still running after halt"
    sleep 0.1
  done
  [ ! -e "$DIR/$name.sock" ] || fail "server $name left its socket file"
  [ ! -e "$DIR/$name.pid" ] || fail "server $name left its pid file"
}

cleanup() {
  for f in "$DIR"/*.pid; do
    [ -e "$f" ] || continue
    kill -TERM "$(cat "$f")" 2>/dev/null || true
  done
}
trap cleanup EXIT

# expect_ping NAME TOOL ARGS...: a ping that must get every reply.
expect_ping() {
  out=$(on "$@") || fail "$* failed: $out"
  echo "$out" | grep -q ' 0.0% packet loss' || fail "$*: replies missing: $out"
  echo "$out"
}

# listening NAME PORT: waits until server NAME has a TCP listener on PORT.
listening() {
  i=0
  until on "$1" netstat -an | grep -Eq "^tcp6? .*[.*]\.$2 .*LISTEN\$"; do
    i=$((i + 1))
    [ $i -lt 100 ] || fail "no listener on port $2 of $1"
    sleep 0.05
  done
}

# transfer FROM TO ADDR PORT BYTES: sends BYTES random bytes with
# `rump nc` from a client of server FROM to a listener (`rump nc -l`) in
# server TO; the SHA-256 of what the listener wrote must equal that of
# the file sent.
transfer() {
  from=$1 to=$2 addr=$3 port=$4 bytes=$5
  head -c "$bytes" /dev/urandom >"$DIR/send.$port"
  six=
  case $addr in *:*) six=-6 ;; esac
  on "$to" nc -l $six "$port" </dev/null >"$DIR/recv.$port" &
  listener=$!
  listening "$to" "$port"
  on "$from" nc "$addr" "$port" <"$DIR/send.$port" >/dev/null || fail "nc to $addr $port"
  wait $listener || fail "listener on $to:$port failed"
  want=$(sha256sum <"$DIR/send.$port" | cut -d' ' -f1)
  got=$(sha256sum <"$DIR/recv.$port" | cut -d' ' -f1)
  [ "$want" = "$got" ] || fail "transfer to $addr $port: checksums differ ($(wc -c <"$DIR/recv.$port") of $bytes bytes)"
  rm -f "$DIR/send.$port" "$DIR/recv.$port"
  echo "transfer $from -> $to ($addr port $port): $bytes bytes, sha256 $want"
}

# counter NAME PROTO TEXT: a number from `rump netstat -s` of server NAME.
counter() {
  on "$1" netstat -s | awk -v p="$2:" -v t="$3" '
    /^[a-z0-9]+:$/ { sect = $1; next }
    sect == p && index($0, t) { print $1; exit }'
}
