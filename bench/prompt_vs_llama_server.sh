#!/usr/bin/env bash
# Prompt processing: cerebrum-node against llama-server on the same GGUF, in one run,
# the two alternating request by request (so drift hits both). Each request is a
# ~1,400-token completion prompt, max_tokens 1, cache_prompt off, a fresh prefix per
# round; the figure is the wall time of the HTTP request. Both engines: 2 threads,
# 4 slots, 2,048 context tokens per slot, OpenMP off.
#
#   bench/prompt_vs_llama_server.sh MODEL.gguf [ROUNDS=5] [CONCURRENT=1]
#
# Needs target/release/cerebrum-node (CEREBRUM_NODE=...) and the peer built by
# scripts/build-llama-server. Run it with nothing else on the machine.
set -euo pipefail
model=$(realpath "$1"); rounds=${2:-5}; conc=${3:-1}
node=${CEREBRUM_NODE:-${CARGO_TARGET_DIR:-target}/release/cerebrum-node}
server="$(scripts/build-llama-server)/llama-server"
[ -x "$node" ] || { echo "no $node: cargo build --release -p cerebrum-node first" >&2; exit 1; }
name=$(basename "$model" .gguf)
dir=$(mktemp -d); ln -s "$model" "$dir/"
key=prompt-bench-0123456789abcdef0123456789abcdef
MAX_CPU_PERCENT=100 CEREBRUM_API_KEY=$key CEREBRUM_MODELS_DIR=$dir CEREBRUM_N_THREADS=2 \
  CEREBRUM_PARALLEL=4 CEREBRUM_CONTEXT_SIZE=2048 CEREBRUM_DEFAULT_MODEL="$name" LOG_LEVEL=warn \
  "$node" serve --port 9311 >"$dir/node.log" 2>&1 &
pids=($!)
"$server" -m "$model" -t 2 -tb 2 -np 4 -c 8192 --port 9312 --no-webui >"$dir/server.log" 2>&1 &
pids+=($!)
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 120); do
  curl -sf localhost:9311/health >/dev/null && curl -sf localhost:9312/health >/dev/null && break
  sleep 0.5
done
curl -sf localhost:9311/health >/dev/null && curl -sf localhost:9312/health >/dev/null ||
  { echo "an engine did not start:" >&2; tail -5 "$dir"/*.log >&2; exit 1; }
python3 - "$name" "$rounds" "$conc" "$key" <<'PY'
import json, statistics, sys, threading, time, urllib.request
name, rounds, conc, key = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def post(port, tag, out):
    line = f"Section {tag}. The quick brown fox jumps over the lazy dog while the careful engineer measures prompt processing speed on two cores. "
    body = {"model": name, "prompt": line * 53, "max_tokens": 1, "temperature": 0,
            "cache_prompt": False, "repeat_penalty": 1.0}
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", json.dumps(body).encode(),
                                 {"content-type": "application/json", "authorization": f"Bearer {key}"})
    out.append(json.load(urllib.request.urlopen(req, timeout=600))["usage"]["prompt_tokens"])
def wave(port, r):
    out = []
    ts = [threading.Thread(target=post, args=(port, f"{r}.{k}", out)) for k in range(conc)]
    t = time.perf_counter()
    for x in ts: x.start()
    for x in ts: x.join()
    return time.perf_counter() - t, out[0]
wave(9311, "warm"); wave(9312, "warm")  # model load, first-use allocations
node, peer = [], []
for r in range(rounds):
    (a, pa), (b, pb) = wave(9311, r), wave(9312, r)
    node.append(a); peer.append(b)
    print(f"round {r}: node {a:.3f} s ({pa} tokens), llama-server {b:.3f} s ({pb} tokens)", flush=True)
n, p = statistics.median(node), statistics.median(peer)
print(f"{name}, {conc} prompt(s) at once: node {n:.2f} s ({min(node):.2f}-{max(node):.2f}), "
      f"llama-server {p:.2f} s ({min(peer):.2f}-{max(peer):.2f}), node speed {p / n:.2f}x llama-server")
PY
