"""Dialects: each source system's API in its own words under /compat/<system>/.

A dialect is a thin translation over the services every other door calls: its own
paths, field names, defaults, status codes and bodies in; a call to `refund_create`,
`sale_cancel` or the bulk import; its own response out. It holds no business rule and
writes no row itself. It shares the native plumbing: API keys, permissions,
throttling, the idempotency store, logs, and strict input (an unknown key is refused,
in the dialect's own error shape). docs/compat-<system>.md maps each field.
"""
