"""The web edge: the pages (mall, console, insights, shared assets) and the HTTP routes
beside /graphql (hub/web/routes.py)."""
