"""bench/memory's table: reads the smaps and thread counts it saved and splits each RSS reading.

python3 bench/memory-table.py OUT GATEWAY_BIN GATEWAY_ENV
python3 bench/memory-table.py --split SMAPS BINARY   # one smaps file's parts, in MB (bench/streams)
"""

import json
import os
import re
import sys

HEADER = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+\s*(.*)$")
PARTS = ["binary", "binary rw", "libs", "stacks", "heap"]
READINGS = ["start", "warm", "idle", "touched"]


def mappings(path):
    """Each mapping of an smaps file: start, end, permissions, path, {field: kB}."""
    maps = []
    with open(path) as f:
        for line in f:
            m = HEADER.match(line)
            if m:
                maps.append({"start": int(m[1], 16), "end": int(m[2], 16), "perms": m[3],
                             "path": m[4].strip(), "kb": {}})
            elif maps and line.endswith(" kB\n"):
                key, value = line.split(":", 1)
                maps[-1]["kb"][key] = int(value.split()[0])
    return maps


def split(path, binary, field="Rss"):
    """kB of RSS (or of another smaps field, e.g. Referenced) by part, and the totals."""
    parts = dict.fromkeys(PARTS, 0)
    maps = mappings(path)
    for i, m in enumerate(maps):
        rss = m["kb"].get(field, 0)
        name = m["path"]
        if name.split(" (deleted)")[0] == binary:
            part = "binary rw" if "w" in m["perms"] else "binary"
        elif name == "[stack]":
            part = "stacks"
        elif name.startswith("/"):
            part = "libs"
        elif name == "" and i > 0 and maps[i - 1]["perms"].startswith("---") \
                and maps[i - 1]["end"] == m["start"] and "w" in m["perms"]:
            part = "stacks"  # a thread's stack: glibc puts its guard page right below it
        else:
            part = "heap"  # mimalloc's arenas, glibc's [heap] and arenas, [vdso] and the like
        parts[part] += rss
    parts["rss"] = sum(m["kb"].get(field, 0) for m in maps)
    parts["anon"] = sum(m["kb"].get("Anonymous", 0) for m in maps)
    parts["anon_huge"] = sum(m["kb"].get("AnonHugePages", 0) for m in maps)
    return parts


def mb(kb):
    return f"{kb / 1024:.1f}"


def span(values):
    lo, hi = min(values), max(values)
    return mb(lo) if mb(lo) == mb(hi) else f"{mb(lo)}–{mb(hi)}"


def mimalloc_stats(stderr):
    """mimalloc's summary lines at exit (MIMALLOC_SHOW_STATS=1), as printed."""
    keep = []
    with open(stderr, errors="replace") as f:
        for line in f:
            if re.match(r"^\s*(heap stats|reserved|committed|reset|purged|touched|pages|"
                        r"segments|threads|process|arenas)\b", line.strip()) or "peak" in line:
                keep.append(line.rstrip())
    return keep


def main():
    out, binary, env = sys.argv[1:4]
    results = {}
    for entry in sorted(os.listdir(out)):
        d = os.path.join(out, entry)
        if not os.path.isdir(d) or not os.path.exists(os.path.join(d, "start.smaps")):
            continue
        config, round_ = entry.rsplit("-", 1)
        run = {}
        for reading in READINGS:
            field = "Referenced" if reading == "touched" else "Rss"
            parts = split(os.path.join(d, f"{reading}.smaps"), binary, field)
            parts["threads"] = int(open(os.path.join(d, f"{reading}.threads")).read())
            run[reading] = parts
        run["mimalloc"] = mimalloc_stats(os.path.join(d, "stderr.log"))
        results.setdefault(config, {})[round_] = run
    json.dump({"gateway_env": env, "results": results},
              open(os.path.join(out, "results.json"), "w"), indent=2)
    rows = [f"gateway environment: {env or '(none)'}",
            "touched: the pages BATCH chat requests after the idle reading referenced", "",
            "| config | reading | RSS MB | binary | binary rw | libs | stacks | heap (anon) "
            "| of which THP | threads |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for config, runs in results.items():
        for reading in READINGS:
            r = [run[reading] for run in runs.values()]
            cells = [span([x[p] for x in r]) for p in ["rss"] + PARTS + ["anon_huge"]]
            threads = "/".join(sorted({str(x["threads"]) for x in r}))
            rows.append(f"| {config} | {reading} | " + " | ".join(cells) + f" | {threads} |")
    table = "\n".join(rows) + "\n"
    open(os.path.join(out, "table.md"), "w").write(table)
    sys.stdout.write(table)


def split_one(smaps, binary):
    """One line: RSS and its parts in MB, as bench/streams reports them."""
    parts = split(smaps, binary)
    print(" ".join(f"{p.replace(' ', '_')}={mb(parts[p])}" for p in ["rss"] + PARTS))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--split"]:
        split_one(*sys.argv[2:4])
    else:
        main()
