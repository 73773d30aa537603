#!/usr/bin/env bash
# Protocol checks against the image the shared container checker built (run after it by
# `make image-test`): HTTP/1.1 and h2c (prior knowledge and Upgrade) on the default config;
# then TLS with ALPN h2, Alt-Svc and HTTP/3 (ngtcp2's gtlsclient, when installed) with
# certificates mounted on /certs; and the production extras (uvloop, httptools) importable.
#
#   IMAGE [localhost/ctr-ci:test]  PORT [8124]  TLS_PORT [8444]  PY [.venv/bin/python]
#   WORK [/tmp/ctr-ci]: the checker's work directory; when no Docker daemon answers, the
#   checker's own dockerd (its data root there, kept with the checker's KEEP_WORK=1) is
#   started again for these checks and stopped. CLEAN_WORK=1 then removes what the checker
#   would have removed without KEEP_WORK.
set -uo pipefail
IMAGE=${IMAGE:-localhost/ctr-ci:test}
PORT=${PORT:-8124}
TLS_PORT=${TLS_PORT:-8444}
PY=${PY:-.venv/bin/python}
CLI=${ENGINE:-docker}
PASS=0; FAIL=0
pass() { PASS=$((PASS+1)); echo "PASS  $1"; }
fail() { FAIL=$((FAIL+1)); echo "FAIL  $1${2:+  -- $2}"; }
CTR_WORK=${WORK:-/tmp/ctr-ci}
WORK=$(mktemp -d)
DOCKERD_PID=""
cleanup() {
  $CLI rm -f ctrci-proto ctrci-proto-tls >/dev/null 2>&1; rm -rf "$WORK"
  if [[ -n $DOCKERD_PID ]]; then
    kill -TERM "$DOCKERD_PID" 2>/dev/null
    for _ in $(seq 1 40); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
  fi
  if [[ ${CLEAN_WORK:-0} == 1 ]]; then
    awk -v w="$CTR_WORK/" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r |
      xargs -r -n 1 umount -l 2>/dev/null
    rm -rf "$CTR_WORK/docker" "$CTR_WORK/podman" "$CTR_WORK/ctx" "$CTR_WORK/trust"
  fi
}
trap cleanup EXIT

# The shared checker runs a private dockerd and stops it when it is done: start it again on
# the same data root (overlay first, then the vfs fallback the checker may have used).
if [[ $CLI == docker ]] && ! docker version >/dev/null 2>&1; then
  for variant in "" "-vfs"; do
    [[ -d $CTR_WORK/docker/data$variant ]] || continue
    opts=(); [[ -n $variant ]] && opts=(--storage-driver vfs)
    dockerd --data-root "$CTR_WORK/docker/data$variant" --exec-root "$CTR_WORK/docker/x" \
      -H "unix://$CTR_WORK/docker/docker.sock" --pidfile "$CTR_WORK/docker/dockerd.pid" \
      --bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
      "${opts[@]}" >>"$WORK/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    export DOCKER_HOST=unix://$CTR_WORK/docker/docker.sock
    for _ in $(seq 1 60); do docker version >/dev/null 2>&1 && break; sleep 0.5; done
    docker image inspect "$IMAGE" >/dev/null 2>&1 && break
    kill -TERM "$DOCKERD_PID" 2>/dev/null; wait "$DOCKERD_PID" 2>/dev/null; DOCKERD_PID=""
  done
fi

if ! $CLI image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "FAIL  image $IMAGE not found (run the container checker first)"; exit 1
fi

wait_url() {  # wait_url URL [curl args...]
  local url=$1; shift
  for _ in $(seq 1 100); do curl -fsS -o /dev/null --max-time 2 "$@" "$url" 2>/dev/null && return 0; sleep 0.2; done
  return 1
}

# ---------------------------------------------------------------- plain: HTTP/1.1 and h2c
$CLI run -d --name ctrci-proto --network host \
  -e HYPERCORN_BIND=127.0.0.1:$PORT -e HYPERCORN_ADMIN_BIND=127.0.0.1:$((PORT + 1000)) \
  "$IMAGE" >/dev/null
if wait_url "http://127.0.0.1:$PORT/"; then
  v=$(curl -fsS -o /dev/null -w '%{http_version}' --http1.1 "http://127.0.0.1:$PORT/")
  [[ $v == 1.1 ]] && pass "http/1.1" || fail "http/1.1" "got HTTP/$v"
  v=$(curl -fsS -o /dev/null -w '%{http_version}' --http2-prior-knowledge "http://127.0.0.1:$PORT/")
  [[ $v == 2 ]] && pass "h2c prior knowledge" || fail "h2c prior knowledge" "got HTTP/$v"
  v=$(curl -fsS -o /dev/null -w '%{http_version}' --http2 "http://127.0.0.1:$PORT/")
  [[ $v == 2 ]] && pass "h2c upgrade" || fail "h2c upgrade" "got HTTP/$v"
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$((PORT + 1000))/readyz")
  [[ $code == 200 ]] && pass "admin /readyz" || fail "admin /readyz" "got $code"
else
  fail "serve (plain)" "$($CLI logs ctrci-proto 2>&1 | tail -n 5 | tr '\n' ' ')"
fi
$CLI rm -f ctrci-proto >/dev/null 2>&1

# ---------------------------------------------------------------- production extras
if $CLI run --rm --network none "$IMAGE" python -c "import uvloop, httptools" >/dev/null 2>&1; then
  pass "extras: uvloop and httptools importable"
else
  fail "extras: uvloop and httptools importable"
fi

version=$($CLI run --rm --network none "$IMAGE" hypercorn --version 2>&1)
[[ $version == *"(compiled)"* ]] && pass "compiled build ($version)" || fail "compiled build" "got '$version'"

# ---------------------------------------------------------------- TLS: h2 via ALPN, HTTP/3
mkdir -p "$WORK/certs"
if "$PY" - "$WORK/certs" <<'EOF'
import sys, trustme
ca = trustme.CA()
leaf = ca.issue_cert("localhost", "127.0.0.1")
leaf.private_key_pem.write_to_path(f"{sys.argv[1]}/server-key.pem")
with open(f"{sys.argv[1]}/server.pem", "wb") as f:
    for blob in leaf.cert_chain_pems:
        f.write(blob.bytes())
ca.cert_pem.write_to_path(f"{sys.argv[1]}/ca.pem")
EOF
then
  chmod 0644 "$WORK/certs"/*.pem
  $CLI run -d --name ctrci-proto-tls --network host -v "$WORK/certs:/certs:ro" \
    -e HYPERCORN_BIND=127.0.0.1:$TLS_PORT -e HYPERCORN_QUIC_BIND=127.0.0.1:$TLS_PORT \
    -e HYPERCORN_ADMIN_BIND=127.0.0.1:$((TLS_PORT + 1000)) \
    -e HYPERCORN_CERTFILE=/certs/server.pem -e HYPERCORN_KEYFILE=/certs/server-key.pem \
    "$IMAGE" >/dev/null
  URL="https://localhost:$TLS_PORT/"
  RESOLVE=(--resolve "localhost:$TLS_PORT:127.0.0.1" --cacert "$WORK/certs/ca.pem")
  if wait_url "$URL" "${RESOLVE[@]}"; then
    v=$(curl -fsS -o /dev/null -w '%{http_version}' "${RESOLVE[@]}" "$URL")
    [[ $v == 2 ]] && pass "https h2 (ALPN)" || fail "https h2 (ALPN)" "got HTTP/$v"
    alt=$(curl -fsS -D - -o /dev/null "${RESOLVE[@]}" "$URL" | tr -d '\r' | grep -i '^alt-svc:')
    [[ $alt == *"h3=\":$TLS_PORT\""* ]] && pass "alt-svc ($alt)" || fail "alt-svc" "got '$alt'"
    if command -v gtlsclient >/dev/null; then
      out=$(gtlsclient --no-quic-dump --exit-on-all-streams-close --timeout=10s \
              127.0.0.1 "$TLS_PORT" "$URL" 2>&1)
      if [[ $out == *"[:status: 200]"* && $out == *"server: hypercorn-h3"* ]]; then pass "http/3 (gtlsclient)"
      else fail "http/3 (gtlsclient)" "$(echo "$out" | grep -E '^http:' | head -n 5 | tr '\n' ' ')"; fi
    else
      echo "SKIP  http/3 -- gtlsclient (ngtcp2-client) not installed"
    fi
  else
    fail "serve (TLS)" "$($CLI logs ctrci-proto-tls 2>&1 | tail -n 5 | tr '\n' ' ')"
  fi
else
  fail "make test certificates" "$PY with trustme is needed (make test installs it)"
fi

echo "protocols: $PASS passed, $FAIL failed"
((FAIL == 0))
