#!/usr/bin/env python3
"""Soak test of `duet serve`: hours of mixed traffic, then checks that
nothing leaked.

Starts `duet serve` (default model unless --model), measures its capacity
with a closed loop of clients, then sends requests as a Poisson stream at
--load times that capacity for --duration seconds:
  - chat completions, mostly streamed, over a few shared system prompts (so
    the prefix cache is used) and user turns of mixed lengths;
  - --cancel-fraction of the streams are cancelled mid-stream (the client
    closes after a few events), --disconnect-fraction of the requests are
    dropped at a random moment (before or after the response starts).
Every other request must end with a complete answer ([DONE] after a
finish_reason, or a JSON body) or an explicit error (an OpenAI error JSON,
in the body or as a stream event); anything else counts as lost.

At the end, with the server idle: no request lost, KV blocks held by
sequences back to 0, each process's RSS within --rss-bound-mib (plus 10 %)
of its value after the capacity phase, and its open file descriptors back
to that value (+2). Prints a table; --json writes the figures. Exit status 1
if a check fails.

usage: scripts/soak.py [--duration 1800] [--load 0.9] [--model DIR]
                       [--serve-arg=--flag=value ...] [--json out.json]
Runs with the standard library only (.venv/bin/python or python3).
"""
import argparse
import http.client
import json
import os
import pathlib
import random
import signal
import socket
import subprocess
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]

SYSTEM_PROMPTS = [
    "You are a helpful assistant who answers briefly.",
    "You are a careful reviewer of technical documents. Point out unclear sentences and suggest better ones.",
    "You are a travel guide for the Alps; you know trails, huts and the weather of every season.",
    "You translate English into plain French and explain idioms you meet along the way.",
]
WORDS = ("the lighthouse keeper counted waves while gulls argued over bread and the tide came in slowly "
         "across the stones of a grey harbour where boats waited for spring").split()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def user_text(rng):
    length = rng.choice([4, 16, 64, 160])  # words
    return " ".join(rng.choice(WORDS) for _ in range(length))


class Tally:
    """Outcomes of the soak's requests, thread-safe."""

    KINDS = ("completed", "explicit_error", "cancelled", "disconnected", "lost")

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {kind: 0 for kind in self.KINDS}
        self.statuses = {}
        self.lost = []  # (what, detail), the first few

    def add(self, kind, status=None, detail=None):
        with self.lock:
            self.counts[kind] += 1
            if status is not None:
                self.statuses[status] = self.statuses.get(status, 0) + 1
            if kind == "lost" and len(self.lost) < 20:
                self.lost.append(detail)


def is_error_json(text):
    try:
        body = json.loads(text)
    except ValueError:
        return False
    return isinstance(body, dict) and isinstance(body.get("error"), dict) and "message" in body["error"]


def one_request(port, model, rng, fate, tally, timeout):
    """Sends one chat completion and records how it ended."""
    stream = fate in ("cancel", "disconnect") or rng.random() < 0.8
    body = {
        "model": model,
        "messages": [{"role": "system", "content": rng.choice(SYSTEM_PROMPTS)},
                     {"role": "user", "content": user_text(rng)}],
        "max_tokens": rng.choice([8, 32, 64, 128]),
        "temperature": rng.choice([0.0, 0.7, 1.0]),
        "stream": stream,
    }
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("POST", "/v1/chat/completions", json.dumps(body),
                           {"Content-Type": "application/json"})
        if fate == "disconnect" and rng.random() < 0.5:
            time.sleep(rng.random() * 0.2)
            tally.add("disconnected")
            return
        response = connection.getresponse()
        status = response.status
        if not stream or status != 200:
            text = response.read().decode("utf-8", "replace")
            if status == 200:
                answer = json.loads(text)
                ok = answer["choices"][0]["finish_reason"] is not None
                tally.add("completed" if ok else "lost", status, None if ok else f"no finish_reason: {text[:200]}")
            elif is_error_json(text):
                tally.add("explicit_error", status)
            else:
                tally.add("lost", status, f"HTTP {status} without an error JSON: {text[:200]}")
            return
        cut_after = rng.randint(1, 6) if fate in ("cancel", "disconnect") else None
        events, finished = 0, False
        for raw in response:
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data: "):
                continue
            data = line[6:]
            if data == "[DONE]":
                tally.add("completed" if finished else "lost", status,
                          None if finished else "[DONE] without a finish_reason")
                return
            if is_error_json(data):
                tally.add("explicit_error", status)
                return
            chunk = json.loads(data)
            if any(choice.get("finish_reason") for choice in chunk.get("choices", [])):
                finished = True
            events += 1
            if cut_after is not None and events >= cut_after:
                tally.add("cancelled" if fate == "cancel" else "disconnected")
                return
        if cut_after is not None and finished:
            tally.add("cancelled" if fate == "cancel" else "disconnected")  # ended before the cut
        else:
            tally.add("lost", status, "the stream ended without [DONE]")
    except (OSError, http.client.HTTPException, ValueError, KeyError) as error:
        tally.add("lost", None, f"{type(error).__name__}: {error}")
    finally:
        connection.close()


def metrics(port):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/metrics")
        text = connection.getresponse().read().decode()
    finally:
        connection.close()
    values = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        name, value = line.rsplit(" ", 1)
        values[name.split("{", 1)[0]] = values.get(name.split("{", 1)[0], 0.0) + float(value)
    return values


def process_usage(pid):
    """(RSS in MiB, open file descriptors) of a live process."""
    rss = 0
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    named = {}
    for child in out.split():
        try:
            name = pathlib.Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")[0].decode()
        except OSError:
            continue
        label = pathlib.Path(name).name
        if label == "duet-worker":
            label = f"duet-worker#{sum(1 for key in named if key.startswith('duet-worker'))}"
        named[label] = int(child)
    return named


def usage_of(pids):
    return {label: process_usage(pid) for label, pid in pids.items()}


def run_load(port, model, seconds, rate, concurrency, args, tally, seed):
    """Poisson arrivals at `rate`/s, or a closed loop of `concurrency` clients
    when rate is None; returns the number of requests started."""
    rng = random.Random(seed)
    deadline = time.monotonic() + seconds
    threads = []
    started = 0

    def fate():
        draw = rng.random()
        if draw < args.cancel_fraction:
            return "cancel"
        if draw < args.cancel_fraction + args.disconnect_fraction:
            return "disconnect"
        return "complete"

    if rate is None:
        def client(index):
            local = random.Random(seed * 1000 + index)
            while time.monotonic() < deadline:
                one_request(port, model, local, "complete", tally, args.request_timeout)
        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sum(tally.counts.values())
    next_at = time.monotonic()
    while True:
        next_at += rng.expovariate(rate)
        now = time.monotonic()
        if next_at >= deadline:
            break
        if next_at > now:
            time.sleep(next_at - now)
        threads = [thread for thread in threads if thread.is_alive()]
        thread = threading.Thread(target=one_request,
                                  args=(port, model, random.Random(rng.random()), fate(), tally,
                                        args.request_timeout), daemon=True)
        thread.start()
        threads.append(thread)
        started += 1
    for thread in threads:
        thread.join(args.request_timeout + 10)
    return started


def wait_idle(port, timeout=120):
    deadline = time.monotonic() + timeout
    values = metrics(port)
    while time.monotonic() < deadline:
        values = metrics(port)
        if values.get("duet:num_requests_running", 1) == 0 and values.get("duet:num_requests_waiting", 1) == 0:
            break
        time.sleep(0.5)
    return values


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=1800, help="seconds of soak traffic")
    parser.add_argument("--capacity-seconds", type=float, default=60, help="seconds of the capacity phase")
    parser.add_argument("--capacity-concurrency", type=int, default=8, help="clients in the capacity phase")
    parser.add_argument("--load", type=float, default=0.9, help="fraction of the measured capacity")
    parser.add_argument("--cancel-fraction", type=float, default=0.10)
    parser.add_argument("--disconnect-fraction", type=float, default=0.05)
    parser.add_argument("--request-timeout", type=float, default=600)
    parser.add_argument("--rss-bound-mib", type=float, default=64,
                        help="allowed RSS growth per process beyond 10 %% of its value after the capacity phase")
    parser.add_argument("--model", default="", help="model for duet serve; default: its default model")
    parser.add_argument("--served-model-name", default="soak")
    parser.add_argument("--serve-arg", action="append", default=[], help="more duet serve flags (--x=y)")
    parser.add_argument("--duet", default=str(ROOT / "build" / "tools" / "duet" / "duet"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", default="", help="write the report here")
    args = parser.parse_args()

    port = free_port()
    log_path = pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / f"duet-soak-{os.getpid()}.log"
    command = [args.duet, "serve", f"--port={port}", f"--grpc-port={free_port()}",
               f"--served-model-name={args.served_model_name}", *args.serve_arg]
    if args.model:
        command.append(f"--model={args.model}")
    log = open(log_path, "wb")
    serve = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    report = {"command": command, "log": str(log_path)}
    try:
        deadline = time.monotonic() + 1800
        while b"ready" not in log_path.read_bytes():
            if serve.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"duet serve did not start; see {log_path}")
            time.sleep(0.2)
        pids = children(serve.pid)

        capacity_tally = Tally()
        begin = time.monotonic()
        run_load(port, args.served_model_name, args.capacity_seconds, None, args.capacity_concurrency, args,
                 capacity_tally, args.seed)
        capacity = capacity_tally.counts["completed"] / (time.monotonic() - begin)
        wait_idle(port)
        baseline = usage_of(pids)
        rate = args.load * capacity
        print(f"capacity {capacity:.2f} requests/s with {args.capacity_concurrency} clients; "
              f"soak at {rate:.2f}/s for {args.duration:.0f} s", flush=True)

        tally = Tally()
        peak = dict(baseline)
        sampler_stop = threading.Event()

        def sample():
            while not sampler_stop.wait(5):
                for label, value in usage_of(pids).items():
                    peak[label] = (max(peak[label][0], value[0]), max(peak[label][1], value[1]))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        begin = time.monotonic()
        started = run_load(port, args.served_model_name, args.duration, rate, 0, args, tally, args.seed + 1)
        elapsed = time.monotonic() - begin
        sampler_stop.set()
        idle = wait_idle(port)
        time.sleep(2)  # closed connections leave the server's tables
        final = usage_of(pids)

        checks = []
        accounted = sum(tally.counts.values())
        checks.append(("every request accounted for", accounted == started, f"{accounted} of {started}"))
        checks.append(("no request lost", tally.counts["lost"] == 0, f"{tally.counts['lost']} lost"))
        used = idle.get("duet:kv_cache_usage_perc", -1)
        checks.append(("KV blocks back to the baseline", used == 0, f"usage {used:.3f}"))
        checks.append(("requests running and waiting 0",
                       idle.get("duet:num_requests_running") == 0 and idle.get("duet:num_requests_waiting") == 0,
                       f"{idle.get('duet:num_requests_running')} running, "
                       f"{idle.get('duet:num_requests_waiting')} waiting"))
        for label in sorted(pids):
            rss0, fds0 = baseline[label]
            rss1, fds1 = final[label]
            bound = rss0 * 1.1 + args.rss_bound_mib
            checks.append((f"{label} RSS within {bound:.0f} MiB", rss1 <= bound,
                           f"{rss0:.0f} -> {rss1:.0f} MiB (peak {peak[label][0]:.0f})"))
            checks.append((f"{label} file descriptors", fds1 <= fds0 + 2,
                           f"{fds0} -> {fds1} (peak {peak[label][1]})"))

        print()
        print(f"{'requests':<34} {started} in {elapsed:.0f} s ({started / elapsed:.2f}/s)")
        for kind in Tally.KINDS:
            print(f"  {kind:<32} {tally.counts[kind]}")
        print(f"  {'HTTP statuses':<32} {dict(sorted(tally.statuses.items()))}")
        print(f"{'generation tokens':<34} {idle.get('duet:generation_tokens_total', 0):.0f}")
        print(f"{'prefix cache hit rate':<34} "
              f"{idle.get('duet:prefix_cache_hits_total', 0) / max(1, idle.get('duet:prefix_cache_queries_total', 0)):.2f}")
        print()
        width = max(len(name) for name, _, _ in checks)
        for name, ok, detail in checks:
            print(f"{'PASS' if ok else 'FAIL'}  {name:<{width}}  {detail}")
        for detail in tally.lost:
            print(f"lost: {detail}")
        report.update({"capacity_rps": capacity, "rate_rps": rate, "seconds": elapsed, "started": started,
                       "outcomes": tally.counts, "statuses": tally.statuses, "lost_details": tally.lost,
                       "baseline": baseline, "final": final, "peak": peak,
                       "checks": [{"name": n, "ok": ok, "detail": d} for n, ok, d in checks]})
        if args.json:
            pathlib.Path(args.json).write_text(json.dumps(report, indent=2))
        failed = not all(ok for _, ok, _ in checks)
    finally:
        if serve.poll() is None:
            serve.send_signal(signal.SIGINT)
            try:
                serve.wait(timeout=60)
            except subprocess.TimeoutExpired:
                serve.kill()
        log.close()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
