# Shared by bench/run.sh and bench/cluster.sh (sourced): the benchmark app and a node's
# configuration, and waiting for a line a process prints.

APP=1400000001; KEY=bench-secret-key; ADMIN=administrator

# node_toml DATA_DIR STORE_LINES: a node's configuration (listening on a free port, the benchmark
# app without rate limits, one custom field), with STORE_LINES (newline-separated) under [store].
node_toml() {
  cat <<TOML
[server]
listen = "127.0.0.1:0"
data_dir = "$1"
[store]
$2
[log]
filter = "warn"
[[apps]]
sdkappid = $APP
key = "$KEY"
admins = ["$ADMIN"]
rate_limits = { enabled = false }
client_rate_limits = { user_reads = 0, user_writes = 0, app_reads = 0, app_writes = 0 }
[[apps.custom_fields]]
name = "Tag_Profile_Custom_Hobby"
type = "string"
max_length = 100
TOML
}

# wait_line FILE PREFIX: prints the rest of the first line of FILE starting with PREFIX.
wait_line() { for _ in $(seq 1 600); do l=$(grep -m1 "^$2" "$1" 2>/dev/null || true); [ -n "$l" ] && { echo "${l#"$2"}"; return; }; sleep 0.1; done; echo "timeout waiting for $2 in $1" >&2; exit 1; }
