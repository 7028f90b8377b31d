"""The SimMIM dashboard: `simmim dashboard` runs this file with Streamlit.

Access is decided here, before any page code runs, on every rerun. A session that is not
let in gets a navigation whose every entry (same names and paths as the real pages, so
deep links keep working after login) draws only the login form: no page name it asks for,
and no widget it claims to click, reaches a view. The views live in ``views/``, not
``pages/``, so Streamlit's folder convention cannot run them on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import streamlit as st

from dashboard import auth, common

HERE = Path(__file__).parent
VIEWS = [  # (file, title, icon); the first is the default page
    ("search", "Search", ":material/search:"),
    ("trends", "Trends", ":material/show_chart:"),
    ("alerts", "Alerts", ":material/notifications:"),
    ("sources", "Sources", ":material/rss_feed:"),
    ("system", "System", ":material/monitor_heart:"),
]

st.set_page_config(page_title="SimMIM", page_icon=":material/travel_explore:", layout="wide")
common.configure_logging_once()
config = common.settings().dashboard


def with_deep_link(pages: list[st.Page], first: Path | Callable[[], None]) -> list[st.Page]:
    """The default page lives at "/" but reserves its own path, so "/search" would be
    "Page not found": the first view also answers at its name, as a hidden page."""
    name, title, _ = VIEWS[0]
    return [*pages, st.Page(first, title=title, url_path=name, visibility="hidden")]


if auth.has_access(config):
    pages = [
        st.Page(
            HERE / "views" / f"{name}.py",
            title=title,
            icon=icon,
            default=n == 0,
            url_path="home" if n == 0 else None,
        )
        for n, (name, title, icon) in enumerate(VIEWS)
    ]
    st.navigation(with_deep_link(pages, HERE / "views" / f"{VIEWS[0][0]}.py")).run()
else:

    def login() -> None:
        auth.login_view(config)

    gates = [
        st.Page(login, title=title, url_path="home" if n == 0 else name, default=n == 0)
        for n, (name, title, _) in enumerate(VIEWS)
    ]
    st.navigation(with_deep_link(gates, login), position="hidden").run()
