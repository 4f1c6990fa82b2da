"""POST /recommend and GET /users/{id}/recommendations."""
