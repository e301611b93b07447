"""feedgate: a Helicone-compatible LLM gateway that logs every call and turns user feedback into answers.

The layout, the two paths through it and the allowed import directions: docs/architecture.md.
"""
