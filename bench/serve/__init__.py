"""Load against a serving engine: `tokenbench serve`, a client for any OpenAI-compatible endpoint.

model.py holds the types every module shares: a request as sent (RequestSpec), what came back
(RequestResult), the load point's settings (LoadSpec) and its statistics (LoadPointStats).
README.md beside this file gives the metric definitions (vLLM's) and how to run it.
"""
