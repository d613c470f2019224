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

The RSS baseline is taken after the capacity phase and a KV warm-up that
writes every block of the workers' KV pools once (their pages are touched
lazily; --no-kv-warmup skips it). At the end, with the server idle: no
request lost, KV blocks held by sequences back to 0, each process's RSS
within --rss-bound-mib (plus 10 %) of the baseline, and its open file
descriptors back to that value (+2). Prints a table; --json writes the
figures. Exit status 1 if a check fails.

--faults N: SIGKILL or SIGSTOP a random worker at N moments of the soak,
with duet serve --restart-workers; each fault must be followed by /health
503 and then 200 within --recovery-bound seconds, the router must stay the
same process, and a request after the last fault must complete.

usage: scripts/soak.py [--duration 1800] [--load 0.9] [--model DIR]
                       [--faults N] [--serve-arg=--flag=value ...] [--json out.json]
Runs with the standard library only (.venv/bin/python or python3).
"""
import argparse
import http.client
import json
import os
import pathlib
import random
import re
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
    """{label: pid} of `duet serve`'s children: duet-router, and each
    duet-worker labelled by its rank (from its --port-file=.../worker<rank>.port)."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    named = {}
    for child in out.split():
        try:
            argv = pathlib.Path(f"/proc/{child}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        label = pathlib.Path(argv[0]).name
        if label == "duet-worker":
            port_file = next((arg for arg in argv if arg.startswith("--port-file=")), "")
            label = f"duet-worker rank {port_file.rsplit('worker', 1)[-1].split('.')[0]}"
        named[label] = int(child)
    return named


def kv_pool(log_path):
    """(blocks, block size, MiB) of the workers' KV pools, from their
    "ready: N KV blocks of B tokens (M MiB, dtype)" log lines (the last ones)."""
    found = re.findall(rb"ready: (\d+) KV blocks of (\d+) tokens \((\d+) MiB(?:, \w+)?\)", log_path.read_bytes())
    if not found:
        return None
    return tuple(int(value) for value in found[-1])


def warm_kv_pool(port, model, blocks, block_size, tally, seed):
    """Prefills distinct prompts (max_tokens 1) until their tokens pass the
    pool's capacity: since a cached block is evicted only when no free block
    is left, every block of the pool has then been written once, and the
    worker's RSS holds all of it before the baseline is taken."""
    rng = random.Random(seed)
    target = int(blocks * block_size * 1.1)
    done = [0]
    lock = threading.Lock()

    def client(index):
        local = random.Random(rng.random())
        while True:
            with lock:
                if done[0] >= target:
                    return
            words = [f"w{index}x{local.randrange(10**6)}"] + [local.choice(WORDS) for _ in range(600)]
            body = {"model": model, "prompt": " ".join(words), "max_tokens": 1}
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            try:
                connection.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
                response = connection.getresponse()
                text = response.read()
                if response.status != 200:
                    tally.add("explicit_error" if is_error_json(text) else "lost", response.status, text[:200])
                    return
                tally.add("completed", 200)
                with lock:
                    done[0] += json.loads(text)["usage"]["prompt_tokens"]
            finally:
                connection.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return done[0]


def health(port):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/health")
        return connection.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


class Faults:
    """SIGKILL or SIGSTOP of a random worker at `count` random moments of the
    soak (at least a minute apart), and /health polled every 0.1 s, so each
    fault's time to 503 and back to 200 is known."""

    def __init__(self, serve_pid, port, count, kinds, seconds, seed):
        rng = random.Random(seed)
        self.serve_pid, self.port = serve_pid, port
        spacing = seconds * 0.8 / max(1, count)
        self.plan = [(seconds * 0.1 + spacing * (i + rng.random() * 0.5), rng.choice(kinds)) for i in range(count)]
        self.rng = rng
        self.done = []  # (time, kind, label, pid)
        self.health = []  # (time, status)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.inject, daemon=True),
                        threading.Thread(target=self.watch, daemon=True)]

    def start(self):
        self.begin = time.monotonic()
        for thread in self.threads:
            thread.start()

    def inject(self):
        for at, kind in self.plan:
            if self.stop.wait(max(0.0, self.begin + at - time.monotonic())):
                return
            workers = {label: pid for label, pid in children(self.serve_pid).items() if label.startswith("duet-worker")}
            if not workers:
                continue
            label = self.rng.choice(sorted(workers))
            os.kill(workers[label], signal.SIGKILL if kind == "kill" else signal.SIGSTOP)
            self.done.append((time.monotonic(), kind, label, workers[label]))

    def watch(self):
        while not self.stop.wait(0.1):
            self.health.append((time.monotonic(), health(self.port)))

    def finish(self):
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def outcomes(self):
        """Per fault: (kind, label, seconds to the first 503, seconds from
        then to the next 200); None where it was not seen."""
        rows = []
        for when, kind, label, _ in self.done:
            down = next((t for t, status in self.health if t >= when and status == 503), None)
            up = next((t for t, status in self.health if down is not None and t > down and status == 200), None)
            rows.append((kind, label, None if down is None else down - when, None if up is None else up - down))
        return rows


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
    parser.add_argument("--no-kv-warmup", action="store_true",
                        help="take the RSS baseline without first writing every KV block once")
    parser.add_argument("--faults", type=int, default=0,
                        help="SIGKILL/SIGSTOP this many times a random worker during the soak "
                             "(duet serve then runs with --restart-workers)")
    parser.add_argument("--fault-kinds", default="kill,stop", help="comma-separated: kill, stop")
    parser.add_argument("--recovery-bound", type=float, default=120,
                        help="seconds a fault may take from /health 503 back to 200")
    args = parser.parse_args()

    port = free_port()
    log_path = pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / f"duet-soak-{os.getpid()}.log"
    command = [args.duet, "serve", f"--port={port}", f"--grpc-port={free_port()}",
               f"--served-model-name={args.served_model_name}", *args.serve_arg]
    if args.model:
        command.append(f"--model={args.model}")
    kinds = [kind for kind in args.fault_kinds.split(",") if kind]
    if args.faults:
        if not kinds or any(kind not in ("kill", "stop") for kind in kinds):
            sys.exit("--fault-kinds takes kill and stop")
        if not any(arg.startswith("--restart-workers") for arg in args.serve_arg):
            command += ["--restart-workers", "--worker-health-timeout=10"]
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
        pool = kv_pool(log_path)
        warm_tally = Tally()
        if pool and not args.no_kv_warmup:
            blocks, block_size, mib = pool
            begin = time.monotonic()
            tokens = warm_kv_pool(port, args.served_model_name, blocks, block_size, warm_tally, args.seed + 2)
            print(f"KV pool of {blocks} blocks ({mib} MiB) written once: {tokens} prompt tokens in "
                  f"{time.monotonic() - begin:.0f} s", flush=True)
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
                for label, pid in children(serve.pid).items():
                    try:
                        value = process_usage(pid)
                    except OSError:  # a worker killed by a fault
                        continue
                    old = peak.get(label, value)
                    peak[label] = (max(old[0], value[0]), max(old[1], value[1]))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        faults = Faults(serve.pid, port, args.faults, kinds, args.duration, args.seed + 3) if args.faults else None
        begin = time.monotonic()
        if faults:
            faults.start()
        started = run_load(port, args.served_model_name, args.duration, rate, 0, args, tally, args.seed + 1)
        elapsed = time.monotonic() - begin
        sampler_stop.set()
        if faults:
            deadline = time.monotonic() + args.recovery_bound
            while health(port) != 200 and time.monotonic() < deadline:
                time.sleep(0.5)
            time.sleep(1)
            faults.finish()
        idle = wait_idle(port)
        time.sleep(2)  # closed connections leave the server's tables
        now_pids = children(serve.pid)
        final = usage_of({label: pid for label, pid in now_pids.items() if pids.get(label) == pid})

        checks = []
        accounted = sum(tally.counts.values())
        checks.append(("every request accounted for", accounted == started, f"{accounted} of {started}"))
        checks.append(("no request lost", tally.counts["lost"] == 0, f"{tally.counts['lost']} lost"))
        if pool and not args.no_kv_warmup:
            checks.append(("no KV warm-up request lost", warm_tally.counts["lost"] == 0,
                           f"{warm_tally.counts['completed']} completed"))
        if faults:
            checks.append(("the router was never restarted", now_pids.get("duet-router") == pids["duet-router"],
                           f"pid {pids['duet-router']} -> {now_pids.get('duet-router')}"))
            for kind, label, to_503, to_200 in faults.outcomes():
                ok = to_503 is not None and to_200 is not None and to_200 <= args.recovery_bound
                shown = lambda v: "never" if v is None else f"{v:.1f} s"  # noqa: E731
                checks.append((f"{kind} of {label}: 503, then serving again", ok,
                               f"503 after {shown(to_503)}, 200 {shown(to_200)} later"))
            checks.append(("as many faults as planned", len(faults.done) == args.faults,
                           f"{len(faults.done)} of {args.faults}"))
            after = Tally()
            one_request(port, args.served_model_name, random.Random(0), "complete", after, args.request_timeout)
            checks.append(("a request after the last fault completes", after.counts["completed"] == 1,
                           str({k: v for k, v in after.counts.items() if v})))
        used = idle.get("duet:kv_cache_usage_perc", -1)
        checks.append(("KV blocks back to the baseline", used == 0, f"usage {used:.3f}"))
        checks.append(("requests running and waiting 0",
                       idle.get("duet:num_requests_running") == 0 and idle.get("duet:num_requests_waiting") == 0,
                       f"{idle.get('duet:num_requests_running')} running, "
                       f"{idle.get('duet:num_requests_waiting')} waiting"))
        for label in sorted(pids):
            if label not in final:
                checks.append((f"{label} RSS and file descriptors", True, "restarted by a fault; not compared"))
                continue
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
                       "baseline": baseline, "final": final, "peak": peak, "kv_pool": pool,
                       "faults": faults.outcomes() if faults else [],
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
