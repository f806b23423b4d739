"""A click-stream topology written the way real ones grow: it gives every optimizer pass
something to do (docs/optimizer.md shows `streamdsl explain` on it)."""

import streamdsl as sd

topology = sd.Topology("clicks")

clicks = topology.stream("clicks", key="user", timestamp="ts")
by_page = clicks.key_by("page")
by_page.group_by_key().count().to_stream().to("views_per_page")
by_page.group_by_key().agg(visitors=sd.count(), last_seen=sd.max("ts")) \
    .to_stream().to("page_stats")
clicks.map(lambda v: v["page"].upper())            # left over from debugging: reaches no sink

# Another module declares the same input again.
again = topology.stream("clicks", key="user", timestamp="ts")
again.key_by("page").filter(sd.col("duration_ms") > 30_000).to("long_visits")
