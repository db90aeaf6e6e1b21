#!/usr/bin/env bash
# Starts Quai the way the README's "Production" section says (check --deploy, collectstatic, migrate, granian's WSGI
# server with DEBUG off behind a TLS-terminating proxy) on a free local port, with a scratch SQLite database, and
# checks what production must do: security headers, static files served by the application server with a long
# cache, the API schema, secure cookies, plain HTTP redirected to HTTPS. Used by CI (.ci/run) and `make prod-smoke`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "prod-smoke: FAIL: $*" >&2; exit 1; }

# The production environment of the README, with scratch places for the database and the collected files.
export DEBUG=false
SECRET_KEY=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(64))')
export SECRET_KEY
export ALLOWED_HOSTS=localhost,127.0.0.1
export QUAI_TRUST_X_FORWARDED_PROTO=true
export DB_CONN_MAX_AGE=60
export DATABASE_URL=${QUAI_SMOKE_DATABASE_URL:-sqlite:///$work/quai.sqlite3}
export QUAI_STATIC_ROOT=$work/static
export QUAI_EMBEDDED_DIR=$work/embedded
export QUAI_LOG_LEVEL=WARNING
unset REDIS_URL

echo "==> manage.py check --deploy"
"$PY" manage.py check --deploy --fail-level WARNING >"$work/check.txt" 2>&1 || { cat "$work/check.txt"; fail "check --deploy"; }
grep -q "System check identified no issues" "$work/check.txt" || { cat "$work/check.txt"; fail "check --deploy printed issues"; }

echo "==> collectstatic, migrate"
"$PY" manage.py collectstatic --no-input -v 0
"$PY" manage.py migrate --no-input -v 0

port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
echo "==> granian quai.wsgi:application on $base"
"$PY" -m granian --interface wsgi --host 127.0.0.1 --port "$port" --workers 1 --blocking-threads 32 \
  --log-level warning --no-access-log quai.wsgi:application &
server_pid=$!
# The checks, in Python with httpx (a dependency of Quai already), as a client behind the TLS-terminating proxy would
# see them: requests carry X-Forwarded-Proto: https, as the proxy adds it.
"$PY" - "$base" "$server_pid" <<'PYEOF'
import json
import os
import re
import sys
import time

import httpx

base, server_pid = sys.argv[1], int(sys.argv[2])
https = {"X-Forwarded-Proto": "https"}


def fail(message: str) -> None:
    sys.exit(f"prod-smoke: FAIL: {message}")


def expect(condition: bool, message: str) -> None:
    if not condition:
        fail(message)


with httpx.Client(base_url=base, timeout=10) as client:
    for _ in range(100):
        try:
            client.get("/ops/login/", headers=https)
            break
        except httpx.TransportError:
            try:
                os.kill(server_pid, 0)
            except ProcessLookupError:
                fail("the server exited")
            time.sleep(0.2)
    else:
        fail("the server did not answer")

    print("==> /ops/login/: 200 with the security headers")
    login = client.get("/ops/login/", headers=https)
    expect(login.status_code == 200, f"/ops/login/ answered {login.status_code}")
    wanted = {
        "strict-transport-security": "max-age=31536000; includeSubDomains; preload",
        "x-content-type-options": "nosniff",
        "referrer-policy": "same-origin",
        "cross-origin-opener-policy": "same-origin",
        "x-frame-options": "DENY",
    }
    for header, value in wanted.items():
        expect(login.headers.get(header) == value, f"{header}: {login.headers.get(header)!r}, wanted {value!r}")
    csp = login.headers.get("content-security-policy", "")
    expect("script-src 'self'" in csp and "frame-ancestors 'none'" in csp, f"content-security-policy: {csp!r}")
    cookie = login.headers.get("set-cookie", "")
    expect("csrftoken=" in cookie and "Secure" in cookie, f"the CSRF cookie is not Secure: {cookie!r}")

    admin = client.get("/admin/login/", headers=https)
    expect(admin.status_code == 200, f"/admin/login/ answered {admin.status_code}")

    print("==> a static file: served by the application server (WhiteNoise), hashed name, compressed, cached for a year")
    assets = re.findall(r'/static/[^"]+\.[0-9a-f]{12}\.(?:css|js)', login.text)
    expect(bool(assets), "no hashed static file referenced by /ops/login/")
    asset = client.get(assets[0], headers={**https, "Accept-Encoding": "gzip"})
    expect(asset.status_code == 200, f"{assets[0]} answered {asset.status_code}")
    cache = asset.headers.get("cache-control", "")
    expect(cache == "max-age=315360000, public, immutable", f"{assets[0]}: cache-control {cache!r}")
    expect(asset.headers.get("content-encoding") == "gzip", f"{assets[0]} was not served compressed")

    print("==> /api/v1/openapi.json")
    schema = client.get("/api/v1/openapi.json", headers=https)
    expect(schema.status_code == 200, f"/api/v1/openapi.json answered {schema.status_code}")
    expect(json.loads(schema.text).get("openapi", "").startswith("3."), "/api/v1/openapi.json is not OpenAPI")

    print("==> plain HTTP is redirected to HTTPS")
    plain = client.get("/ops/login/")
    location = plain.headers.get("location", "")
    expect(plain.status_code == 301 and location.startswith("https://"), f"plain HTTP: {plain.status_code} {location}")

print("prod-smoke: OK")
PYEOF
