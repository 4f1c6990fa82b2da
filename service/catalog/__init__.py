"""GET /users/{id}/history and GET /items/{id}."""
