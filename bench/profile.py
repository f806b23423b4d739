"""Profile one workload on one backend with pyinstrument:
``python -m bench.profile fraud [--n 200000] [--backend local] [--html out.html]``
(or a Nexmark query: ``python -m bench.profile nexmark-q5``; ``--n`` then counts the events
generated, of which the query reads its topics').

The input is generated before the profiler starts, so the profile is the backend's run only
(plan already optimized, as in ``make bench``). For a sampling profile of native frames too
(Bytewax's Rust, Beam's C coders), run the same under py-spy:
``py-spy record --native -o fraud.svg -- .venv/bin/python -m bench.profile fraud --no-profiler``.
"""

from __future__ import annotations

import argparse
import time

from . import workloads
from .worker import _plan


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.profile")
    ap.add_argument("workload", choices=[*workloads.WORKLOADS, *workloads.nexmark()])
    ap.add_argument("--n", type=int, default=200_000, help="input events (default 200k)")
    ap.add_argument("--backend", default="local")
    ap.add_argument("--interval", type=float, default=0.0005, help="sampling interval, s")
    ap.add_argument("--html", help="write pyinstrument's HTML report here")
    ap.add_argument("--no-profiler", action="store_true",
                    help="just run (for an external profiler such as py-spy)")
    args = ap.parse_args(argv)

    from streamdsl.backend import get_backend
    w = workloads.get(args.workload)
    inputs = w.generate(args.n)
    plan, _ = _plan(w)
    backend = get_backend(args.backend)
    spec = {t: {"type": "memory", "records": v} for t, v in inputs.items()}
    print("plan:", " -> ".join(f"{n.kind}({n.name})" for n in plan.topological()))

    profiler = None
    if not args.no_profiler:
        from pyinstrument import Profiler
        profiler = Profiler(interval=args.interval)
        profiler.start()
    t0 = time.perf_counter()
    result = backend.run(plan, spec, {}, optimize=False)
    dt = time.perf_counter() - t0
    if profiler is not None:
        profiler.stop()
    events = sum(len(v) for v in inputs.values())
    print(f"{args.workload} on {args.backend}: {events} events in {dt:.2f} s "
          f"({events / dt:,.0f} events/s), {len(result.outputs[w.SINK])} output records")
    if profiler is not None:
        if args.html:
            with open(args.html, "w") as f:
                f.write(profiler.output_html())
            print(f"profile: {args.html}")
        else:
            print(profiler.output_text(unicode=False, color=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
