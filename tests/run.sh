#!/usr/bin/env bash
# Hearth's test command: `bash tests/run.sh` (CI runs exactly this through .ci/run).
#
# Steps: Python tools (.venv) -> cargo fmt/clippy -> moto server -> cargo test -> schemathesis
# (openapi.yaml against the local stack) -> cfn-lint on template.yaml -> cargo audit against the
# offline advisory snapshot (../shared/advisory-db).
# Needs: a Rust toolchain with rustfmt and clippy, Python 3 (>= 3.9), a C compiler. No Docker,
# no AWS account: AWS APIs are emulated by moto server on a free loopback port.
#
# Environment it honours:
#   CARGO_TARGET_DIR   where cargo builds (left as is; default ./target)
#   HEARTH_VENV_DIR    the Python virtualenv (default ./.venv)
#   HEARTH_TOOLS_DIR   `cargo install --root` for tools missing from PATH (default ./.tools)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
VENV="${HEARTH_VENV_DIR:-$ROOT/.venv}"
TOOLS="${HEARTH_TOOLS_DIR:-$ROOT/.tools}"
ADVISORY_DB="$ROOT/../shared/advisory-db"
CARGO_AUDIT_VERSION=0.22.2

# ---------------------------------------------------------------------------------------------
# Step bookkeeping: headers, wall time per step, a summary on exit (also after a failure).
# ---------------------------------------------------------------------------------------------
STEP_NAMES=()
STEP_SECS=()
CURRENT_STEP=""
STEP_T0=""
RUN_T0="$EPOCHREALTIME"
MOTO_PID=""
MOTO_LOG=""
STACK_PID=""
STACK_DIR=""

elapsed() { # elapsed START -> seconds with one decimal
    awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'
}

begin_step() {
    CURRENT_STEP="$1"
    STEP_T0="$EPOCHREALTIME"
    printf '\n==> %s\n' "$CURRENT_STEP"
}

end_step() {
    STEP_NAMES+=("$CURRENT_STEP")
    STEP_SECS+=("$(elapsed "$STEP_T0")")
    CURRENT_STEP=""
}

stop_moto() {
    if [[ -n "$MOTO_PID" ]]; then
        kill "$MOTO_PID" 2>/dev/null || true
        wait "$MOTO_PID" 2>/dev/null || true
        MOTO_PID=""
    fi
}

stop_stack() {
    if [[ -n "$STACK_PID" ]]; then
        kill -INT "$STACK_PID" 2>/dev/null || true
        wait "$STACK_PID" 2>/dev/null || true
        STACK_PID=""
    fi
}

free_port() {
    "$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_for_http() { # wait_for_http URL PID WHAT SECONDS: until URL answers, PID dies, or time is up
    "$VENV/bin/python" - "$@" <<'PY'
import os, sys, time, urllib.request

url, pid, what, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
deadline = time.monotonic() + seconds
while True:
    try:
        with urllib.request.urlopen(url, timeout=2):
            break
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(f"{what} exited before it answered")
    if time.monotonic() > deadline:
        sys.exit(f"{what} did not answer within {seconds:.0f} s")
    time.sleep(0.1)
PY
}

on_exit() {
    local status=$?
    local moto_was_running="$MOTO_PID"
    stop_moto
    stop_stack
    if [[ -n "$STACK_DIR" ]]; then
        if [[ $status -ne 0 && -s "$STACK_DIR/stack.log" ]]; then
            printf '\n--- last lines of the local stack log (kept in %s) ---\n' "$STACK_DIR"
            tail -n 20 "$STACK_DIR/stack.log" || true
        else
            rm -rf "$STACK_DIR"
        fi
    fi
    if [[ -n "$CURRENT_STEP" ]]; then
        STEP_NAMES+=("$CURRENT_STEP (FAILED)")
        STEP_SECS+=("$(elapsed "$STEP_T0")")
    fi
    if [[ -n "$MOTO_LOG" ]]; then
        if [[ -n "$CURRENT_STEP" && -n "$moto_was_running" && -s "$MOTO_LOG" ]]; then
            printf '\n--- last lines of the moto server log (kept at %s) ---\n' "$MOTO_LOG"
            tail -n 20 "$MOTO_LOG" || true
        else
            rm -f "$MOTO_LOG"
        fi
    fi
    printf '\n==> Summary (wall time)\n'
    local i
    for i in "${!STEP_NAMES[@]}"; do
        printf '  %7ss  %s\n' "${STEP_SECS[$i]}" "${STEP_NAMES[$i]}"
    done
    printf '  %7ss  total\n' "$(elapsed "$RUN_T0")"
    if [[ $status -eq 0 ]]; then
        printf 'tests/run.sh: all steps passed\n'
    else
        printf 'tests/run.sh: FAILED (exit %d)\n' "$status"
    fi
    exit "$status"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A hermetic AWS environment for every step, moto server included (it runs botocore itself):
# nothing from ~/.aws or the caller's profile, credentials or endpoints leaks in, and nothing
# can reach a real account (the only endpoint set below is moto's, on loopback).
unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN
while IFS='=' read -r name _; do
    unset "$name" # e.g. AWS_ENDPOINT_URL_DYNAMODB left over from a LocalStack shell
done < <(env | grep -E '^AWS_ENDPOINT_URL' || true)
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export AWS_EC2_METADATA_DISABLED=true
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1

# ---------------------------------------------------------------------------------------------
begin_step "Python tools (${VENV#"$ROOT"/})"
# ---------------------------------------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
fi
REQ_SHA="$(sha256sum tests/requirements.txt | cut -d' ' -f1)"
if [[ "$(cat "$VENV/.requirements.sha" 2>/dev/null || true)" != "$REQ_SHA" ]]; then
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r tests/requirements.txt
    printf '%s\n' "$REQ_SHA" >"$VENV/.requirements.sha"
    echo "installed tests/requirements.txt"
else
    echo "up to date (tests/requirements.txt unchanged)"
fi
end_step

# ---------------------------------------------------------------------------------------------
begin_step "cargo fmt --check"
# ---------------------------------------------------------------------------------------------
cargo fmt --all -- --check
end_step

# ---------------------------------------------------------------------------------------------
begin_step "cargo clippy (-D warnings)"
# ---------------------------------------------------------------------------------------------
cargo clippy --workspace --all-targets --locked -- -D warnings
end_step

# ---------------------------------------------------------------------------------------------
begin_step "moto server"
# ---------------------------------------------------------------------------------------------
PORT="$(free_port)"
MOTO_LOG="$(mktemp "${TMPDIR:-/tmp}/hearth-moto.XXXXXX")"
"$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >"$MOTO_LOG" 2>&1 &
MOTO_PID=$!
wait_for_http "http://127.0.0.1:$PORT/moto-api/" "$MOTO_PID" "moto server" 30
echo "moto server on http://127.0.0.1:$PORT (pid $MOTO_PID, log $MOTO_LOG)"
end_step

# ---------------------------------------------------------------------------------------------
begin_step "cargo test (AWS APIs on moto)"
# ---------------------------------------------------------------------------------------------
(
    export AWS_ENDPOINT_URL="http://127.0.0.1:$PORT"
    export HEARTH_MOTO_ENDPOINT="http://127.0.0.1:$PORT"
    cargo test --workspace --locked
)
stop_moto
end_step

# ---------------------------------------------------------------------------------------------
begin_step "schemathesis: openapi.yaml against the local stack"
# ---------------------------------------------------------------------------------------------
# The owner API as the local stack serves it (the Lambda's handler), fuzzed from the document
# with every check (schemathesis.toml): no 5xx, and no response the document does not describe.
cargo build -p hearth-local --locked --quiet
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps --locked | "$VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
HEARTH_LOCAL="$TARGET_DIR/debug/hearth-local"
STACK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/hearth-schemathesis.XXXXXX")"
HTTP_PORT="$(free_port)"
MQTT_PORT="$(free_port)"
"$HEARTH_LOCAL" up --data-dir "$STACK_DIR/data" --template template.yaml \
    --mqtt "127.0.0.1:$MQTT_PORT" --http "127.0.0.1:$HTTP_PORT" >"$STACK_DIR/stack.log" 2>&1 &
STACK_PID=$!
wait_for_http "http://127.0.0.1:$HTTP_PORT/health" "$STACK_PID" "the local stack" 60
export HEARTH_API_URL="http://127.0.0.1:$HTTP_PORT"
HEARTH_API_TOKEN="$("$HEARTH_LOCAL" token fuzzer --group makers --email fuzzer@example.com \
    --data-dir "$STACK_DIR/data")"
export HEARTH_API_TOKEN
"$VENV/bin/schemathesis" --no-color run openapi.yaml
unset HEARTH_API_TOKEN
stop_stack
end_step

# ---------------------------------------------------------------------------------------------
begin_step "cfn-lint template.yaml (+ serverless rules)"
# ---------------------------------------------------------------------------------------------
"$VENV/bin/cfn-lint" template.yaml -a cfn_lint_serverless.rules
echo "template.yaml: no findings"
end_step

# ---------------------------------------------------------------------------------------------
begin_step "cargo audit (offline advisory snapshot)"
# ---------------------------------------------------------------------------------------------
if [[ -d "$ADVISORY_DB" ]]; then
    if command -v cargo-audit >/dev/null 2>&1; then
        CARGO_AUDIT="$(command -v cargo-audit)"
    elif [[ -x "$TOOLS/bin/cargo-audit" ]]; then
        CARGO_AUDIT="$TOOLS/bin/cargo-audit"
    else
        echo "cargo-audit not found: installing $CARGO_AUDIT_VERSION into $TOOLS (once)"
        # A throwaway target dir: keep the tool's build out of the project's (cached) one.
        env -u CARGO_TARGET_DIR cargo install cargo-audit --version "$CARGO_AUDIT_VERSION" \
            --locked --quiet --root "$TOOLS"
        CARGO_AUDIT="$TOOLS/bin/cargo-audit"
    fi
    "$CARGO_AUDIT" audit --db "$ADVISORY_DB" --no-fetch --stale
else
    echo "cargo audit skipped: no advisory snapshot at ../shared/advisory-db"
fi
end_step
