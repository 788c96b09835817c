"""What people read about the mirrors, all from one monitor snapshot. Pure: `rows` (a row per
mirror), `site` (the overview, a page per mirror, ``status.json``), `svgplot` (its charts),
`metrics` (Prometheus' text format)."""
