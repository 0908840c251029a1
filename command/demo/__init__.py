"""The demo county's traffic: simulated feeds, weeks of plausible history, the live demo.

- `simulate`: realistic reports (`ReportFactory`) and a feed client that sends them (`run`,
  `cmdcenter simulate`);
- `history`: weeks of plausible history before now (`seed_history`, `cmdcenter seed-history`)
  and the model the live demo continues (`Model`);
- `feeds`: `cmdcenter demo`'s township feeds, scripted situations and demo users.

Nothing in the product's core imports this package; only the CLI, tests and benchmarks do.
"""
