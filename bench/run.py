"""wesbot's benchmarks. Run from the project root: `.venv/bin/python -m bench.run` (about a minute).

1. Ack latency of `/wes status` in HTTP mode while WES takes 5 s to answer: 200 signed slash commands,
   20 in flight, timed from sending the request to Slack's HTTP 200 (the ack). Median and p99.
2. The cost wesbot adds to a lookup: `/wes status` end to end (signed POST -> ack -> WES -> the answer at
   the response_url) against a fake WES that answers at once, next to a bare httpx GET of the same WES URL,
   in the same run. Reports both medians, the difference and the ratio.

Everything runs on 127.0.0.1: the real `wesbot serve --http` process, the fake WES and the fake Slack.
The machines are shared and noisy, so compare the ratio and the difference measured in one run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from bench.stats import machine, percentile
from tests.botproc import BotProcess
from tests.fakes.fake_slack import FakeSlack, form_body, signed_request_headers, slash_command_payload
from tests.fakes.fake_wes import FakeWes


def ack_latency(requests: int, in_flight: int, wes_delay: float) -> tuple[float, float, float]:
    with FakeWes(validate=False) as wes, FakeSlack() as slack:
        wes.add_run("bench-slow", "RUNNING")
        wes.delays["/runs/bench-slow/status"] = wes_delay
        bot = BotProcess(wes_url=wes.url, slack_api_url=slack.api_url, http=True)
        try:
            bot.wait_http_ready()
            body = form_body(slash_command_payload("status bench-slow", response_url=slack.response_url("ack")))
            url = bot.url + "/slack/events"
            with httpx.Client(limits=httpx.Limits(max_connections=in_flight)) as client:

                def one(_: int) -> float:
                    headers = signed_request_headers(body)
                    started = time.perf_counter()
                    response = client.post(url, content=body, headers=headers, timeout=10)
                    elapsed = time.perf_counter() - started
                    assert response.status_code == 200, response.status_code
                    return elapsed

                with ThreadPoolExecutor(max_workers=in_flight) as pool:
                    latencies = list(pool.map(one, range(requests)))
        finally:
            bot.stop()
    return statistics.median(latencies) * 1000, percentile(latencies, 99) * 1000, max(latencies) * 1000


def lookup_cost(rounds: int) -> tuple[float, float]:
    with FakeWes(validate=False) as wes, FakeSlack() as slack:
        wes.add_run("bench-fast", "RUNNING")
        bot = BotProcess(wes_url=wes.url, slack_api_url=slack.api_url, http=True)
        try:
            bot.wait_http_ready()
            url = bot.url + "/slack/events"
            status_url = wes.url + "/runs/bench-fast/status"
            bare: list[float] = []
            e2e: list[float] = []
            with httpx.Client() as client:
                for i in range(rounds + 10):  # the first 10 of each warm up connections and caches
                    started = time.perf_counter()
                    assert client.get(status_url).status_code == 200
                    if i >= 10:
                        bare.append(time.perf_counter() - started)

                    name = f"cost{i}"
                    body = form_body(slash_command_payload("status bench-fast", response_url=slack.response_url(name)))
                    started = time.perf_counter()
                    assert client.post(url, content=body, headers=signed_request_headers(body)).status_code == 200
                    slack.wait_for_response(name, timeout=10)
                    if i >= 10:
                        e2e.append(time.perf_counter() - started)
        finally:
            bot.stop()
    return statistics.median(bare) * 1000, statistics.median(e2e) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--in-flight", type=int, default=20)
    parser.add_argument("--wes-delay", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()

    print(f"machine: {machine()}")
    median, p99, worst = ack_latency(args.requests, args.in_flight, args.wes_delay)
    print(f"ack latency, /wes status, WES answering in {args.wes_delay:g} s, {args.requests} requests, "
          f"{args.in_flight} in flight: median {median:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms "
          f"(goal: p99 < 100 ms) {'OK' if p99 < 100 else 'MISSED'}")
    bare, e2e = lookup_cost(args.rounds)
    print(f"lookup cost, {args.rounds} rounds: bare httpx GET median {bare:.2f} ms, /wes status end to end "
          f"median {e2e:.2f} ms; wesbot adds {e2e - bare:.2f} ms per lookup, ratio {e2e / bare:.1f}x "
          f"(goal: < 5 ms added) {'OK' if e2e - bare < 5 else 'MISSED'}")


if __name__ == "__main__":
    main()
