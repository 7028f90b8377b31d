"""The SimMIM dashboard: `simmim dashboard` runs this file with Streamlit."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard.common import require_password

HERE = Path(__file__).parent

st.set_page_config(page_title="SimMIM", page_icon=":material/travel_explore:", layout="wide")

if require_password():
    pages = [
        st.Page(HERE / "pages/search.py", title="Search", icon=":material/search:", default=True),
        st.Page(HERE / "pages/trends.py", title="Trends", icon=":material/show_chart:"),
        st.Page(HERE / "pages/alerts.py", title="Alerts", icon=":material/notifications:"),
        st.Page(HERE / "pages/sources.py", title="Sources", icon=":material/rss_feed:"),
        st.Page(HERE / "pages/system.py", title="System", icon=":material/monitor_heart:"),
    ]
    st.navigation(pages).run()
