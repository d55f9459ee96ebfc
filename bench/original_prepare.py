#!/usr/bin/env python3
"""The original Cerebrum prompt pipeline, in plain Python (stdlib only).

The original system's Python code is not in this repository; this follows its
design document (ARCHITECTURE.md of the original, "Prompt Preparation"), step
by step, the plain way that design reads:

1. Extract the instruction: the first marker line (``INSTRUCTION:``,
   ``REFACTOR:``, ``TODO:``, any case, at the start of a line or after ``#``,
   ``//`` or ``--``) starts it and it runs to the end of the prompt; without a
   marker, the prose around ``` fences is the instruction and the fenced
   blocks are the code; a separately given instruction (the system message)
   comes first.
2. Only prompts whose code is over 1,500 characters are prepared.
3. Chunk: 1,000-character blocks with 150 characters of overlap.
4. Deduplicate: a hash fingerprint (MD5 of the whitespace-normalised chunk);
   a chunk whose fingerprint was seen before is dropped.
5. Rank by relevance to the instruction: keywords (instruction words of three
   letters or more, minus stop words) counted in the lowercased chunk; select
   the top 3, kept in their original order.
6. Assemble instruction first, then the selected chunks.
7. Skip when the result is not at least 10% shorter: the original is sent.

Used by ``orchestrator/benches/prepare_peer.rs``, which runs this and the Rust
``prepare`` on the same prompts in the same run:

    python3 bench/original_prepare.py --bench CASES.json --iters N

reads ``[{"text": ..., "instruction": ... or null}, ...]`` and prints one JSON
line: per case, the per-iteration times in nanoseconds (time.perf_counter_ns
around ``prepare`` only, after warm-up), plus each result's sizes.
"""

import hashlib
import json
import re
import sys
import time

THRESHOLD_CHARS = 1500
CHUNK_SIZE = 1000
CHUNK_OVERLAP = 150
TOP_K = 3
MIN_REDUCTION = 0.10

MARKERS = ("INSTRUCTION", "REFACTOR", "TODO")
MARKER_LINE_RE = re.compile(r"[ \t]*(?:#+|//+|--+)?[ \t]*(?:INSTRUCTION|REFACTOR|TODO)[ \t]*:", re.IGNORECASE)
FENCE = "```"
WORD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
STOP_WORDS = frozenset(
    """a an and are as at be but by can could do does for from has have how i in
    into is it its make me my of on or our please should so some that the their
    them then there these this those to use using was we what when where which
    while who why will with would you your instruction refactor todo code
    function method following above below""".split()
)


def find_marker(prompt):
    """Start of the first marker line, or -1: each keyword is found with
    str.find, and its line is checked to be a marker line."""
    upper = prompt.upper()
    best = -1
    for keyword in MARKERS:
        at = upper.find(keyword)
        while at >= 0:
            line = prompt.rfind("\n", 0, at) + 1
            if MARKER_LINE_RE.match(prompt, line):
                if best < 0 or line < best:
                    best = line
                break
            at = upper.find(keyword, at + 1)
    return best


def extract_instruction(prompt, system=None):
    """Returns (instruction, code): the earliest marker line starts the
    instruction; else prose around ``` fences is; a system message is first."""
    start = find_marker(prompt)
    instruction = None
    code = prompt
    if start >= 0:
        instruction = prompt[start:].strip()
        code = prompt[:start]
    elif prompt.count(FENCE) >= 2:
        parts = prompt.split(FENCE)
        blocks = [p.split("\n", 1)[1] if "\n" in p else "" for p in parts[1::2]]
        code = "\n".join(blocks)
        instruction = "\n".join(p.strip() for p in parts[0::2] if p.strip()) or None
    if system:
        instruction = system.strip() + ("\n\n" + instruction if instruction else "")
    return instruction, code


def chunk_text(text, size=CHUNK_SIZE, overlap=CHUNK_OVERLAP):
    chunks = []
    step = size - overlap
    start = 0
    while start < len(text):
        chunks.append(text[start : start + size])
        if start + size >= len(text):
            break
        start += step
    return chunks


def fingerprint(chunk):
    return hashlib.md5(" ".join(chunk.split()).encode("utf-8")).hexdigest()


def deduplicate(chunks):
    seen = set()
    unique = []
    for chunk in chunks:
        fp = fingerprint(chunk)
        if fp in seen:
            continue
        seen.add(fp)
        unique.append(chunk)
    return unique


def keywords(instruction):
    words = (w.lower() for w in WORD_RE.findall(instruction))
    return {w for w in words if len(w) > 2 and w not in STOP_WORDS}


def rank_chunks(chunks, instruction, top_k=TOP_K):
    """Top-k chunks by keyword occurrences, kept in their original order."""
    keys = keywords(instruction or "")
    scored = []
    for index, chunk in enumerate(chunks):
        lower = chunk.lower()
        scored.append((sum(lower.count(k) for k in keys), index, chunk))
    scored.sort(key=lambda s: (-s[0], s[1]))
    best = sorted(scored[:top_k], key=lambda s: s[1])
    return [chunk for _, _, chunk in best]


def assemble(instruction, chunks):
    body = "\n...\n".join(chunks)
    if instruction:
        return instruction + "\n\n" + body
    return body


def prepare(prompt, system=None):
    """Returns (final_prompt, applied)."""
    instruction, code = extract_instruction(prompt, system)
    original = assemble(instruction, [prompt]) if system else prompt
    if len(code) <= THRESHOLD_CHARS:
        return original, False
    chunks = chunk_text(code)
    unique = deduplicate(chunks)
    selected = rank_chunks(unique, instruction)
    result = assemble(instruction, selected)
    if len(result) > len(original) * (1.0 - MIN_REDUCTION):
        return original, False
    return result, True


def bench(path, iters, warmup):
    with open(path, encoding="utf-8") as f:
        cases = json.load(f)
    out = []
    for case in cases:
        text, system = case["text"], case.get("instruction")
        for _ in range(warmup):
            prepare(text, system)
        times = []
        for _ in range(iters):
            t0 = time.perf_counter_ns()
            prepare(text, system)
            times.append(time.perf_counter_ns() - t0)
        result, applied = prepare(text, system)
        out.append({"ns": times, "chars": len(text), "final_chars": len(result), "applied": applied})
    json.dump({"python": sys.version.split()[0], "cases": out}, sys.stdout)
    sys.stdout.write("\n")


def main(argv):
    if len(argv) >= 3 and argv[1] == "--bench":
        iters = int(argv[argv.index("--iters") + 1]) if "--iters" in argv else 200
        warmup = int(argv[argv.index("--warmup") + 1]) if "--warmup" in argv else 20
        bench(argv[2], iters, warmup)
        return 0
    if len(argv) == 1 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0
    with open(argv[1], encoding="utf-8") as f:
        result, applied = prepare(f.read())
    sys.stdout.write(result + "\n")
    sys.stderr.write("applied\n" if applied else "sent unchanged\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
