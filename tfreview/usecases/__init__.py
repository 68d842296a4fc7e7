"""The use cases, one module per verb (package, plan, decide, apply, release, report, history, drift, comment,
init, unlock, notify, evidence export, policy check) and the Context they share. Orchestration only: they call
the layers below (trust, store, terraform, rollout, plan, review, render, base) and never each other's internals.
"""
