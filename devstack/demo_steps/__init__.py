"""Demo steps: `step<NN>_<name>.py` modules, each with `run(ctx: devstack.demo.DemoContext) -> None`.

Run in name order by `python -m devstack demo`. Numbers: 10 health, 20 regenerate/loader,
30 backup, 40 restore/verify/migrate, 50 prune, 60 kv, 70 alerts/summary, 90 outage.
Use `ctx.section(title)`, `ctx.lastgood(*args)`, `ctx.invoke(function, event_file)`,
`ctx.summary(line)` and `ctx.stack`; raise (e.g. `devstack.demo.StepFailed`) when the
product does not do what the step shows.
"""
