"""Signing in through the real /login form."""


def sign_in(page, server, name: str, role: str, unit: str | None = None,
            password: str = "password-123") -> None:
    """Create the user (once per server) and sign in through the /login form."""
    made = server.__dict__.setdefault("_browser_users", set())
    if name not in made:
        server.add_user(name, role, unit, password=password)
        made.add(name)
    page.goto(server.url + "/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()
