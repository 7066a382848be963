#!/usr/bin/env python3
"""Writes the seed inputs of every fuzz target into fuzz/corpus/<target>/ from the golden
files (tests/golden: real requests and upstream answers of each provider) and the example
configs. Run once before a first fuzzing run; `fuzz/run` minimises the corpora afterwards.
Input layouts are described in llmgate::fuzzing (crates/llmgate/src/fuzzing.rs)."""

import base64
import hashlib
import json
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")

# llmgate_providers::fuzzing::SAMPLES indexes
PLAIN, STREAM_TOOLS, JSON_MODE, COMPLETION, EMBED, EMBED_B64 = range(6)


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def body_of(respond):
    if "base64" in respond:
        return base64.b64decode(respond["base64"])
    if "text" in respond:
        return respond["text"].encode()
    if "json" in respond:
        return json.dumps(respond["json"]).encode()
    return b""


def sample(req):
    path = req.get("path", "")
    b = req.get("body", {})
    if path.endswith("/embeddings"):
        return EMBED_B64 if b.get("encoding_format") == "base64" else EMBED
    if path.endswith("/completions") and not path.endswith("chat/completions"):
        return COMPLETION
    if b.get("response_format"):
        return JSON_MODE
    if b.get("stream") or b.get("tools"):
        return STREAM_TOOLS
    return PLAIN


def golden():
    gdir = os.path.join(ROOT, "tests", "golden")
    for provider in sorted(os.listdir(gdir)):
        for name in sorted(os.listdir(os.path.join(gdir, provider))):
            with open(os.path.join(gdir, provider, name)) as f:
                case = json.load(f)
            req = case.get("request", {})
            path = req.get("path", "")
            body = json.dumps(req.get("body", {}))
            target = {
                "/v1/chat/completions": "request_chat",
                "/v1/completions": "request_completions",
                "/v1/embeddings": "request_embeddings",
                "/v1/messages": "request_messages",
            }.get(path)
            if target:
                put(target, body)
            params = case.get("litellm_params")
            if params:
                put("config_yaml", "model_list:\n  - model_name: m\n    litellm_params: "
                    + json.dumps(params) + "\n")
            respond = case.get("upstream", {}).get("respond", {})
            up = body_of(respond)
            ctype = respond.get("headers", {}).get("content-type", "")
            stream = "event-stream" in ctype or "ndjson" in ctype or "eventstream" in ctype
            sel = sample(req)
            if "cohere" in json.dumps(params or {}):
                sel |= 0x10
            if provider == "openai":
                if stream:
                    for size in (0, 5):
                        put("openai_stream", bytes([size]) + up)
                        put("sse_decode", bytes([size]) + up)
                else:
                    put("openai_answer", up)
                resp = case.get("response", {})
                if "events" in resp and not path.endswith("messages"):
                    sse = "".join("data: " + json.dumps(e) + "\n\n" for e in resp["events"])
                    put("openai_stream", b"\x00" + sse.encode() + b"data: [DONE]\n\n")
                elif "json" in resp and not path.endswith("messages"):
                    put("openai_answer", json.dumps(resp["json"]))
                continue
            if provider not in ("anthropic", "gemini", "ollama", "bedrock"):
                continue
            # what the gateway answered in OpenAI's shape feeds the inbound translation
            resp = case.get("response", {})
            if not path.endswith("messages") and resp.get("status") == 200:
                if "events" in resp:
                    sse = "".join("data: " + json.dumps(e) + "\n\n" for e in resp["events"])
                    put("openai_stream", b"\x03" + sse.encode() + b"data: [DONE]\n\n")
                elif "json" in resp:
                    put("openai_answer", json.dumps(resp["json"]))
            if stream:
                for size in (0, 3, 64):
                    put(provider + "_stream", bytes([sel, size]) + up)
                if provider == "ollama":
                    put("ndjson_decode", bytes([0]) + up)
                    put("ndjson_decode", bytes([7]) + up)
                elif provider == "bedrock":
                    put("bedrock_eventstream", bytes([0]) + up)
                    put("bedrock_eventstream", bytes([9]) + up)
                else:
                    put("sse_decode", bytes([0]) + up)
                    put("sse_decode", bytes([2]) + up)
            else:
                put(provider + "_answer", bytes([sel]) + up)


def configs():
    for rel in ("examples/quickstart.yaml", "examples/configs/full.yaml"):
        with open(os.path.join(ROOT, rel), "rb") as f:
            put("config_yaml", f.read())


def extras():
    # SSE edge cases: BOM, CR line ends, comments, multi-line data, id and retry
    put("sse_decode", b"\x01\xef\xbb\xbf: hi\r\nevent: e\rdata: a\r\ndata: b\n\nid: 1\nretry: 5\ndata\n\n")
    put("ndjson_decode", b"\x01{\"a\":1}\r\n\n  \n{\"b\":2}")
    put("openai_stream", b"\x82data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}}\n\nevent: error\ndata: {\"error\":{\"message\":\"x\"}}\n\ndata: [DONE]\n\n")


def json_events():
    """`json_object_text`: the data of every OpenAI-shaped stream event and answer in the
    golden files, and the edge cases of serde_json's grammar the scanner must match."""
    gdir = os.path.join(ROOT, "tests", "golden")
    for provider in sorted(os.listdir(gdir)):
        for name in sorted(os.listdir(os.path.join(gdir, provider))):
            with open(os.path.join(gdir, provider, name)) as f:
                case = json.load(f)
            resp = case.get("response", {})
            for e in resp.get("events", []):
                put("json_object_text", json.dumps(e))
            if "json" in resp:
                put("json_object_text", json.dumps(resp["json"]))
            if provider == "openai":
                up = body_of(case.get("upstream", {}).get("respond", {}))
                for line in up.split(b"\n"):
                    if line.startswith(b"data: {"):
                        put("json_object_text", line[6:])
    for edge in [
        r'{"content":"\ud83d\ude00\u00e9\n","cont\u0065nt":"x","n":[-0,1e5,0.5E-3]}',
        r'{"content":"\ud83d"}', r'{"n":01}', r'{"n":1.}', r'{"n":1e400}', r'{"n":0e999}',
        '{"a":' * 127 + '1' + '}' * 127, '{"a":' * 128 + '1' + '}' * 128,
        ' {"text" : [ "a" , {"text":"b"} ] } \r\n', '{"a":1} x', '{"a":"\x01"}',
    ]:
        put("json_object_text", edge)


if __name__ == "__main__":
    golden()
    configs()
    extras()
    json_events()
    for t in sorted(os.listdir(CORPUS)):
        print(t, len(os.listdir(os.path.join(CORPUS, t))), file=sys.stderr)
