"""The web edge: the pages (mall, console, insights, shared assets; hub/web/pages.py puts the
console and insights together from hub/web/key_page.html) and the HTTP routes beside /graphql
(hub/web/routes.py)."""
