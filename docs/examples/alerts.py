"""A fraud alert that is legal but wrong in practice (docs/cli.md: `streamdsl validate`)."""

import streamdsl as sd

topology = sd.Topology("alerts")
(topology.stream("attempts", timestamp="ts")
    .group_by("card")
    .window(sd.tumbling(minutes=5), emit="changes")
    .agg(n=sd.count())
    .filter(sd.col("n") > 3)        # HAVING count(*) > 3, on every update
    .to_stream()
    .to("alerts"))
