"""REST API plumbing shared by the apps: API key auth, the JSON envelope, errors,
throttling, pagination, idempotency and the OpenAPI schema. Imports no app."""
