"""The API's routers, one module per area; ``vigil.api.app.create_app`` mounts them."""
