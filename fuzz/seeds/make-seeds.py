#!/usr/bin/env python3
"""Writes the seed inputs of every fuzz target into fuzz/corpus/<target>/.

Seeds are real requests and streams: the *.sse files beside this script were
captured from the real node (node_*) and orchestrator (orch_*) with SmolLM2;
the request bodies are the README's and the tests' examples; the prompts are
code of the shape preparation is for. Each seed file is named seed-*, so the
corpus that fuzzing grows beside them can be told apart.
Run from anywhere: python3 fuzz/seeds/make-seeds.py
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "corpus")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def sse(name):
    with open(os.path.join(HERE, name), "rb") as f:
        return f.read()


def frame(obj):
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


# --- relay_sse: a byte choosing how reads cut the stream, then the node's stream.
write("relay_sse", "chat", b"\x00" + sse("node_chat.sse"))
write("relay_sse", "text-cut7", b"\x07" + sse("node_text.sse"))
write("relay_sse", "utf8-cut13", b"\x0d" + sse("node_chat_utf8.sse"))
write("relay_sse", "error-event", b"\x03" + sse("node_chat.sse")[:400]
      + frame({"error": {"message": "decode failed", "type": "server_error", "code": "streaming_failed"}})
      + b"data: [DONE]\n\n")
write("relay_sse", "truncated", b"\x05" + sse("node_chat.sse")[:700])
write("relay_sse", "crlf-comments", b"\x02" + b": keep-alive\r\n\r\nevent: message\r\nid: 1\r\n"
      + b'data: {"choices":[{"index":0,"text":"a"}]}\r\n\r\nretry: 10\r\ndata: [DONE]\r\n\r\n')

# --- client_sse: mode byte (top bits: 0 Cerebrum, 0x80 OpenAI chat, 0xC0 OpenAI text), then the stream.
write("client_sse", "cerebrum", b"\x05" + sse("orch_complete.sse"))
write("client_sse", "openai-chat", b"\x89" + sse("orch_chat.sse"))
write("client_sse", "openai-text", b"\xc3" + sse("orch_text.sse"))
write("client_sse", "cerebrum-error", b"\x01" + frame({"token": "Hi", "total_tokens": 1})
      + frame({"error": "Streaming failed", "code": "streaming_failed", "message": "no token for 60 s", "done": True}))
write("client_sse", "openai-error", b"\x80" + frame({"error": {"code": "vps_timeout", "message": "VPS timeout: no first token",
                                                               "type": "server_error"}}) + b"data: [DONE]\n\n")

# --- node_request: a byte choosing the type (0 inference, 1 chat, 2 completion, 3 tokenize), then the body.
node = [
    (0, "inference", {"prompt": "def add(a, b):", "max_tokens": 16, "temperature": 0.2, "stop": ["\n\n"],
                      "top_p": 0.9, "top_k": 40, "seed": 7, "repeat_penalty": 1.1, "cache_prompt": True}),
    (0, "inference-min", {"prompt": "Hello"}),
    (1, "chat", {"model": "smollm2", "messages": [{"role": "system", "content": "Be brief."},
                                                  {"role": "user", "content": "Hi"}],
                 "max_tokens": 12, "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}),
    (1, "chat-parts", {"messages": [{"role": "user", "content": [{"type": "text", "text": "What is 2+2?"},
                                                                 {"type": "image_url"}]}],
                       "max_completion_tokens": 8, "stop": "END", "n": 1}),
    (2, "completion", {"model": "smollm2", "prompt": "The capital of France is", "max_tokens": 8, "stream": True}),
    (2, "completion-many", {"prompt": ["a", "b"], "stop": ["x", "y"], "seed": 1}),
    (3, "tokenize", {"content": "def add(a, b):", "count_only": True}),
    (3, "tokenize-chat", {"model": "smollm2", "messages": [{"role": "user", "content": "Hi"}]}),
]
for choice, name, body in node:
    write("node_request", name, bytes([choice]) + json.dumps(body).encode())
write("node_request", "not-json", b"\x01{\"messages\": [")

# --- orchestrator_request: route (0 complete, 1 stream, 2 chat, 3 completions, 4 prepare) in the low
# 3 bits, Content-Type in the next 2 (0: application/json), then the body.
orch = [
    (0, "complete", {"prompt": "def add(a, b):", "language": "python", "max_tokens": 8}),
    (1, "complete-stream", {"prompt": "def add(a, b):", "language": "python", "max_tokens": 8, "temperature": 0,
                            "stop": ["\n\n"], "seed": 3}),
    (2, "chat-stream", {"messages": [{"role": "user", "content": "Hi"}], "stream": True, "max_tokens": 8,
                        "stream_options": {"include_usage": True}}),
    (2, "chat", {"model": "fake-model", "messages": [{"role": "system", "content": "Be brief."},
                                                     {"role": "user", "content": "Hi"}], "max_tokens": 8}),
    (3, "completions", {"prompt": "The capital of France is", "max_tokens": 8}),
    (3, "completions-stream", {"prompt": ["The capital of France is"], "max_tokens": 8, "stream": True}),
    (4, "prepare", {"prompt": "def add(a, b):\n    return a + b\n# fix add", "language": "python",
                    "instruction": "fix add"}),
    (0, "complete-bad", {"prompt": "x", "max_tokens": 0}),
    (2, "chat-bad", {"messages": [], "temperature": 9}),
]
for choice, name, body in orch:
    write("orchestrator_request", name, bytes([choice]) + json.dumps(body).encode())
write("orchestrator_request", "text-plain", bytes([0x10]) + json.dumps(orch[0][2]).encode())

# --- prepare: a 16-byte header (byte 0 even: default tunables; odd: the next 15 set them), then
# text [\0 instruction [\0 language]].
def python_file(n, marker=None):
    out = ["import os", "import sys", ""]
    for i in range(n):
        out += [f"def handle_item_{i}(item, config):",
                f"    \"\"\"Handles item kind {i}.\"\"\"",
                f"    if item.kind != {i}:",
                "        return None",
                f"    total = sum(x * {i + 1} for x in item.values)",
                "    if total > config.limit:",
                f"        raise ValueError('item {i} over the limit')",
                "    return total", ""]
    if marker:
        out.append(marker)
    return "\n".join(out) + "\n"


def rust_file(n):
    out = ["use std::collections::HashMap;", ""]
    for i in range(n):
        out += [f"pub fn parse_record_{i}(line: &str) -> Result<u64, String> {{",
                "    let mut fields = line.split(',');",
                f"    let id = fields.next().ok_or(\"no id in record {i}\")?;",
                "    id.trim().parse::<u64>().map_err(|e| e.to_string())",
                "}", ""]
    return "\n".join(out)


default = bytes(16)
tuned = bytes([1, 0xe8, 0x03, 0x90, 0x01, 0x32, 0x00, 2, 17, 40, 8, 60, 2, 40, 60, 80])
block = python_file(6)
write("prepare", "marker", default + python_file(40, "# TODO: handle_item_17 raises on an empty list; fix it").encode())
write("prepare", "chat-fence", default + ("Why does parse_record_12 fail on blank lines?\n\n```rust\n"
                                          + rust_file(30) + "```\n\nThanks!").encode())
write("prepare", "given-instruction", default + rust_file(25).encode() + b"\0Explain parse_record_3\0rs")
write("prepare", "repeats", default + (block * 6 + "# explain handle_item_2\n").encode())
write("prepare", "tuned", tuned + python_file(20, "# why is handle_item_5 slow?").encode())
write("prepare", "short", default + b"def add(a, b):\n    return a + b\n")
