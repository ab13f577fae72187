"""`baton ui`: the web view of workflows, runs and worker pools.

`server` serves the JSON API and the page (assets in `static/`, built from web/ by esbuild);
`access` decides whose rights each request uses; `index` keeps the runs list from a watch;
`model` turns a run into its graph, timeline and attempts. What a run holds is read through
`baton.cli.runread`, and written through `baton.cli.runactions`, as the command line does.
"""
