"""Measuring admin pages through the full middleware stack, shared by the benchmarks:
server time, template time, SQL time and the statements of each page."""

import statistics
import time


class SqlTimer:
    """An execute wrapper recording every statement's duration, SQL and parameters."""

    def __init__(self) -> None:
        self.queries: list[tuple[float, str, object]] = []

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.queries.append((time.perf_counter() - started, sql, params))

    @property
    def seconds(self) -> float:
        return sum(q[0] for q in self.queries)


def timed_sql(func, *args, **kwargs):
    """(result, wall seconds, SqlTimer) of one call."""
    from django.db import connection

    timer = SqlTimer()
    with connection.execute_wrapper(timer):
        started = time.perf_counter()
        result = func(*args, **kwargs)
        wall = time.perf_counter() - started
    return result, wall, timer


class RenderTimer:
    """Time spent rendering templates (the admin's Python side after the view's queries)."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __enter__(self):
        from django.template.response import SimpleTemplateResponse

        self._original = original = SimpleTemplateResponse.render
        timer = self

        def render(response):
            started = time.perf_counter()
            try:
                return original(response)
            finally:
                timer.seconds += time.perf_counter() - started

        SimpleTemplateResponse.render = render
        return self

    def __exit__(self, *exc) -> None:
        from django.template.response import SimpleTemplateResponse

        SimpleTemplateResponse.render = self._original


def measure_pages(client, urls: dict[str, str], repeat: int) -> dict[str, dict]:
    """Median wall, template and SQL time of ``repeat`` GETs of each page after one warm-up,
    and the median time of each statement (a page's statements are the same every time).
    The pages take turns, so a slower spell of the machine falls on all of them alike."""
    samples = {label: ([], [], [], [], {}) for label in urls}
    for url in urls.values():
        response = client.get(url)
        if response.status_code != 200:
            raise RuntimeError(f"GET {url}: HTTP {response.status_code}")
    for _ in range(repeat):
        for label, url in urls.items():
            walls, renders, sqls, counts, statements = samples[label]
            with RenderTimer() as render:
                response, wall, timer = timed_sql(client.get, url)
            if response.status_code != 200:
                raise RuntimeError(f"GET {url}: HTTP {response.status_code}")
            walls.append(wall)
            renders.append(render.seconds)
            sqls.append(timer.seconds)
            counts.append(len(timer.queries))
            for n, (seconds, sql, params) in enumerate(timer.queries):
                statements.setdefault(n, (sql, params, []))[2].append(seconds)
    return {
        label: {
            "url": urls[label],
            "wall": statistics.median(walls),
            "best": min(walls),
            "render": statistics.median(renders),
            "sql": statistics.median(sqls),
            "queries": max(counts),
            "statements": [
                (statistics.median(times), sql, params)
                for sql, params, times in statements.values()
            ],
        }
        for label, (walls, renders, sqls, counts, statements) in samples.items()
    }


def short_sql(sql: str, width: int = 110) -> str:
    """The start of a statement: its select list elided, its FROM and WHERE kept."""
    sql = " ".join(sql.split())
    head, sep, tail = sql.partition(" FROM ")
    if sep and len(head) > 40:
        head = head[:28] + " …"
    text = f"{head}{sep}{tail}"
    return text if len(text) <= width else text[: width - 1] + "…"


def print_statements(m: dict) -> None:
    for seconds, sql, _params in m["statements"]:
        print(f"      {seconds * 1000:6.2f} ms  {short_sql(sql)}")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:9.1f}"
