"""log_async: asyncio tasks on their own tracks."""

import asyncio

from support import assert_nested, events, load_trace
from viztracer import VizTracer


async def work(n):
    total = 0
    for i in range(n):
        await asyncio.sleep(0)
        total += leaf(i)
    return total


def leaf(i):
    return i


async def main():
    a = asyncio.create_task(work(3), name="alpha")
    b = asyncio.create_task(work(4), name="beta")
    return await a + await b


def run_traced(tmp_path, **options):
    path = str(tmp_path / "async.json")
    tracer = VizTracer(output_file=path, verbose=0, **options)
    tracer.start()
    result = asyncio.run(main())
    tracer.stop()
    tracer.save()
    return result, load_trace(path)


def thread_names(trace):
    return {e["tid"]: e["args"]["name"] for e in trace["traceEvents"]
            if e["ph"] == "M" and e["name"] == "thread_name"}


def test_tasks_get_their_own_tracks(tmp_path):
    result, trace = run_traced(tmp_path, log_async=True)
    assert result == 3 + 6
    names = thread_names(trace)
    by_task = {}
    for e in events(trace):
        if e["name"].startswith("leaf "):
            by_task.setdefault(names.get(e["tid"]), []).append(e)
    assert len(by_task["alpha"]) == 3 and len(by_task["beta"]) == 4
    # The coroutine frames are on the task's track too.
    work_tids = {e["tid"] for e in events(trace) if e["name"].startswith("work ")}
    assert {names[t] for t in work_tids} == {"alpha", "beta"}
    assert_nested(trace)


def test_without_log_async_everything_is_on_the_thread(tmp_path):
    _, trace = run_traced(tmp_path)
    tids = {e["tid"] for e in events(trace) if e["name"].startswith(("leaf ", "work "))}
    assert len(tids) == 1
    assert "alpha" not in thread_names(trace).values()


def test_trio_tasks_get_their_own_tracks(tmp_path):
    trio = __import__("pytest").importorskip("trio")

    async def trio_work(n):
        for i in range(n):
            await trio.sleep(0)
            leaf(i)

    async def trio_main():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio_work, 3, name="first")
            nursery.start_soon(trio_work, 2, name="second")

    path = str(tmp_path / "trio.json")
    tracer = VizTracer(output_file=path, verbose=0, log_async=True)
    tracer.start()
    trio.run(trio_main)
    tracer.stop()
    tracer.save()
    trace = load_trace(path)
    names = thread_names(trace)
    per_task = {}
    for e in events(trace):
        if e["name"].startswith("leaf "):
            per_task.setdefault(names.get(e["tid"]), 0)
            per_task[names.get(e["tid"])] += 1
    assert per_task == {"first": 3, "second": 2}
    assert_nested(trace)
