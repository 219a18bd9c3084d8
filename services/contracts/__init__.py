"""The platform's contracts as documents, generated from the code: a JSON Schema per event type,
an AsyncAPI 3 document of every topic and an OpenAPI document per service (`docs/contracts/`).

`python -m services.contracts` rewrites them; `--check` fails when they are stale or when an event
schema changed incompatibly against the checked-in baseline (tests/platform does the same).
"""
